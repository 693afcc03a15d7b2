//! GraphQL over HTTP as frontend tooling expects it: media types and status codes, GET queries
//! (mutations refused), partial results, Apollo's automatic persisted queries, CORS, absolute
//! links, and refusals that reach a client still writing its body.
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::{services, spawn_pair_with};
use crate::files::upload;
use crate::fixtures::create_group;
use crate::helpers::{TestApp, error_code, spawn_app, spawn_app_with};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// POSTs `body` as JSON with `accept`; (status, content type, JSON body).
async fn post(app: &TestApp, accept: Option<&str>, body: &Value) -> (StatusCode, String, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    answer(request).await
}

/// GETs `/graphql` with `params` in the query string.
async fn get(
    app: &TestApp,
    token: Option<&str>,
    accept: Option<&str>,
    params: &[(&str, &str)],
) -> (StatusCode, String, Value) {
    let mut request = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(params);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    answer(request).await
}

async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, String, Value) {
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, content_type, body)
}

#[tokio::test]
async fn request_errors_have_no_data_and_their_status_follows_the_media_type() {
    let (app, _dir) = spawn_app().await;
    let broken = [
        ("parse", json!({ "query": "{" })),
        ("validation", json!({ "query": "{ noSuchField }" })),
        (
            "variables",
            json!({ "query": "query($id: ID!) { user(id: $id) { id } }", "variables": { "id": [1] } }),
        ),
    ];
    for (what, body) in &broken {
        let (status, content_type, answer) = post(&app, Some(GRAPHQL_RESPONSE), body).await;
        assert_eq!(status, 400, "{what}: {answer}");
        assert!(
            content_type.starts_with(GRAPHQL_RESPONSE),
            "{what}: {content_type}"
        );
        assert!(answer.get("data").is_none(), "{what}: {answer}");
        assert!(
            answer["errors"][0]["message"].is_string(),
            "{what}: {answer}"
        );

        let (status, content_type, answer) = post(&app, Some("application/json"), body).await;
        assert_eq!(status, 200, "{what}: {answer}");
        assert_eq!(content_type, "application/json; charset=utf-8", "{what}");
        assert!(answer.get("data").is_none(), "{what}: {answer}");
    }
    // No Accept header, or */*: JSON.
    for accept in [None, Some("*/*")] {
        let (status, content_type, answer) =
            post(&app, accept, &json!({ "query": "{ __typename }" })).await;
        assert_eq!(status, 200);
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(answer["data"]["__typename"], "Query");
    }
    // An operation that ran is a 200 with `data` under either type, errors or not.
    let (status, content_type, answer) = post(
        &app,
        Some(GRAPHQL_RESPONSE),
        &json!({ "query": "{ me { id } }" }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(content_type.starts_with(GRAPHQL_RESPONSE));
    assert!(answer.get("data").is_some(), "{answer}");
    assert_eq!(error_code(&answer), "UNAUTHENTICATED");
}

#[tokio::test]
async fn malformed_parameters_are_400_and_a_batch_keeps_its_good_entries() {
    let (app, _dir) = spawn_app().await;
    for body in [
        json!({ "query": 1 }),
        json!({ "qeury": "{ __typename }" }),
        json!({ "query": "{ __typename }", "variables": "{}" }),
        json!({ "query": "{ __typename }", "extensions": [] }),
        json!({ "query": "{ __typename }", "operationName": {} }),
        json!([]),
    ] {
        let (status, _, answer) = post(&app, None, &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer.get("data").is_none(), "{answer}");
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    }
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "no Content-Type");
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body("{\"query\":")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "not JSON");

    let (status, _, answers) = post(
        &app,
        None,
        &json!([{ "query": "{ __typename }" }, { "qeury": "x" }, { "query": "{ serverTime }" }]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(answers[0]["data"]["__typename"], "Query", "{answers}");
    assert!(answers[1].get("data").is_none(), "{answers}");
    assert_eq!(error_code(&answers[1]), "BAD_USER_INPUT");
    assert!(answers[2]["data"]["serverTime"].is_string(), "{answers}");
}

#[tokio::test]
async fn get_runs_queries_refuses_mutations_and_serves_graphiql_to_browsers() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let (status, content_type, answer) = get(
        &app,
        Some(&ana.token),
        None,
        &[
            (
                "query",
                "query Me($id: ID!) { me { id } user(id: $id) { username } } query Other { serverTime }",
            ),
            ("variables", &json!({ "id": ana.id }).to_string()),
            ("operationName", "Me"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(content_type.starts_with("application/json"));
    assert_eq!(answer["data"]["me"]["id"], ana.id.as_str(), "{answer}");
    assert_eq!(answer["data"]["user"]["username"], "ana", "{answer}");

    let (status, content_type, answer) =
        get(&app, None, Some(GRAPHQL_RESPONSE), &[("query", "{ nope }")]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(content_type.starts_with(GRAPHQL_RESPONSE));
    assert!(answer.get("data").is_none());

    // A mutation over GET never runs, named or not, alone or beside a query.
    for params in [
        vec![("query", "mutation { logout }")],
        vec![
            ("query", "query Q { me { id } } mutation M { logout }"),
            ("operationName", "M"),
        ],
    ] {
        let response = app
            .client
            .get(format!("{}/graphql", app.address))
            .query(&params)
            .bearer_auth(&ana.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{params:?}");
        assert_eq!(response.headers()["allow"], "POST");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(error_code(&answer), "METHOD_NOT_ALLOWED");
    }
    // The session survived: logout did not run.
    assert_eq!(
        app.gql_ok(Some(&ana.token), "{ me { id } }", json!({}))
            .await["me"]["id"],
        ana.id.as_str()
    );

    // A browser gets the page; a tool asking for JSON without a query gets a 400, not HTML.
    let page = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let (status, _, answer) = get(&app, None, Some("application/json"), &[]).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_failed_nullable_field_is_null_beside_its_error() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let answer = app
        .gql(
            Some(&ana.token),
            "query($c: ID!) { chat(id: $c) { id } me { id } }",
            json!({ "c": unknown }),
        )
        .await;
    let data = answer["data"].as_object().expect("data is an object");
    assert!(
        data.contains_key("chat"),
        "the failed field is present: {answer}"
    );
    assert!(data["chat"].is_null());
    assert_eq!(data["me"]["id"], ana.id.as_str());
    assert_eq!(answer["errors"][0]["path"], json!(["chat"]));

    // A failed non-null field makes its nearest nullable parent null.
    let group = create_group(&app, &ana.token, "g", &[]).await;
    let answer = app
        .gql(
            Some(&ana.token),
            "query($c: ID!) { me { id } chat(id: $c) { id members(after: \"not a cursor\") { totalCount } } }",
            json!({ "c": group }),
        )
        .await;
    assert_eq!(
        answer["errors"][0]["path"],
        json!(["chat", "members"]),
        "{answer}"
    );
    assert!(answer["data"].as_object().unwrap().contains_key("chat"));
    assert!(answer["data"]["chat"].is_null(), "{answer}");
    assert_eq!(answer["data"]["me"]["id"], ana.id.as_str());

    // Through an alias and a fragment, the same.
    let answer = app
        .gql(
            Some(&ana.token),
            "query($c: ID!) { ...F } fragment F on Query { gone: chat(id: $c) { id } }",
            json!({ "c": unknown }),
        )
        .await;
    assert!(
        answer["data"].as_object().unwrap().contains_key("gone"),
        "{answer}"
    );
    assert!(answer["data"]["gone"].is_null());

    // A failed non-null root field nulls `data` itself.
    let answer = app
        .gql(
            None,
            "mutation { sendMessage(input: { chatId: \"x\", content: \"hi\" }) { id } }",
            json!({}),
        )
        .await;
    assert!(answer["data"].is_null(), "{answer}");
    assert!(answer.as_object().unwrap().contains_key("data"), "{answer}");
}

/// A persisted-query request: the hash, and the document when `with_query`.
fn persisted(query: &str, with_query: bool) -> Value {
    let hash = format!("{:x}", sha2::Sha256::digest(query.as_bytes()));
    let mut body =
        json!({ "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } } });
    if with_query {
        body["query"] = json!(query);
    }
    body
}

#[tokio::test]
async fn automatic_persisted_queries_round_trip_over_post_and_get() {
    let (app, _dir) = spawn_app().await;
    let query = "{ serverTime __typename }";
    let (status, _, answer) = post(&app, None, &persisted(query, false)).await;
    assert_eq!(status, 200);
    assert_eq!(error_code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");
    assert_eq!(answer["errors"][0]["message"], "PersistedQueryNotFound");
    assert!(answer.get("data").is_none());
    let (status, _, answer) = post(&app, Some(GRAPHQL_RESPONSE), &persisted(query, false)).await;
    assert_eq!(status, 400, "a request error under the new media type");
    assert_eq!(error_code(&answer), "PERSISTED_QUERY_NOT_FOUND");

    let (status, _, answer) = post(&app, None, &persisted(query, true)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");

    // The hash alone now works, over GET too (Apollo's useGETForHashedQueries).
    let (_, _, answer) = post(&app, None, &persisted(query, false)).await;
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");
    let extensions = persisted(query, false)["extensions"].to_string();
    let (status, _, answer) = get(&app, None, None, &[("extensions", &extensions)]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["__typename"], "Query", "{answer}");

    // A document that does not match its hash is refused, and not remembered.
    let mut lying = persisted("{ me { id } }", false);
    lying["query"] = json!("{ __schema { types { name } } }");
    let (_, _, answer) = post(&app, None, &lying).await;
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    let (_, _, answer) = post(&app, None, &persisted("{ me { id } }", false)).await;
    assert_eq!(error_code(&answer), "PERSISTED_QUERY_NOT_FOUND", "{answer}");

    let mut future = persisted(query, false);
    future["extensions"]["persistedQuery"]["version"] = json!(2);
    let (_, _, answer) = post(&app, None, &future).await;
    assert_eq!(
        error_code(&answer),
        "PERSISTED_QUERY_NOT_SUPPORTED",
        "{answer}"
    );

    // A persisted mutation still never runs over GET.
    let mutation = "mutation { logout }";
    post(&app, None, &persisted(mutation, true)).await;
    let extensions = persisted(mutation, false)["extensions"].to_string();
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("extensions", &extensions)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn a_hash_learnt_by_one_instance_works_on_another() {
    let Some(redis) = services() else { return };
    let (a, b, _dirs) = spawn_pair_with(&redis, |_| {}).await;
    let query = "{ serverTime }";
    let (_, _, answer) = post(&b, None, &persisted(query, false)).await;
    assert_eq!(error_code(&answer), "PERSISTED_QUERY_NOT_FOUND");
    post(&a, None, &persisted(query, true)).await;
    let (_, _, answer) = post(&b, None, &persisted(query, false)).await;
    assert!(answer["data"]["serverTime"].is_string(), "{answer}");
}

#[tokio::test]
async fn cors_preflight_names_the_headers_clients_send_and_is_cached() {
    let (app, _dir) = spawn_app().await;
    let preflight = |app: &TestApp, origin: &str| {
        app.client
            .request(Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,apollo-require-preflight",
            )
            .send()
    };
    let response = preflight(&app, "https://app.example").await.unwrap();
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap();
    for name in ["authorization", "content-type", "apollo-require-preflight"] {
        assert!(
            allowed.split(',').any(|h| h.trim() == name),
            "{name} in {allowed}"
        );
    }
    assert_eq!(headers["access-control-max-age"], "86400");

    let (listed, _dir) = spawn_app_with(|c| {
        c.cors_origins = vec!["https://app.example".into(), "https://admin.example".into()];
    })
    .await;
    let response = preflight(&listed, "https://admin.example").await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://admin.example"
    );
    let response = preflight(&listed, "https://evil.example").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "an origin not listed is not allowed"
    );
}

#[tokio::test]
async fn links_are_absolute_on_the_public_base() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let file = upload(
        &app,
        &ana.token,
        "a.png",
        "image/png",
        crate::file_bytes::png(2048),
    )
    .await;
    let url = file["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/files/", app.address)), "{url}");
    let fetched = app.client.get(url).send().await.unwrap();
    assert_eq!(fetched.status(), 200, "the link works as it is");

    let (proxied, _dir) =
        spawn_app_with(|c| c.public_url = Some("https://chat.example.com/".into())).await;
    let bob = proxied.register("bob").await;
    let file = upload(
        &proxied,
        &bob.token,
        "b.png",
        "image/png",
        crate::file_bytes::png(2048),
    )
    .await;
    let url = file["url"].as_str().unwrap();
    assert!(url.starts_with("https://chat.example.com/files/"), "{url}");
}

/// Sends a whole request on a raw socket before reading anything, as Node's `fetch` and
/// browsers do, and returns the response head and body as text (or the socket error).
async fn write_all_then_read(app: &TestApp, head: &str, body_len: usize) -> Result<String, String> {
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    socket
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < body_len {
        let n = chunk.len().min(body_len - sent);
        socket
            .write_all(&chunk[..n])
            .await
            .map_err(|e| e.to_string())?;
        sent += n;
    }
    let mut answer = Vec::new();
    socket
        .read_to_end(&mut answer)
        .await
        .map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_refused_upload_reaches_a_client_that_writes_its_whole_body_first() {
    let (app, _dir) = spawn_app_with(|c| c.max_refused_body_bytes = 32 * 1024 * 1024).await;
    // More than the kernel's socket buffers hold, so a server that stopped reading would make
    // this write fail.
    let length = 24 * 1024 * 1024;
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=b\r\n\
         content-length: {length}\r\nconnection: close\r\n\r\n"
    );
    let answer = write_all_then_read(&app, &head, length)
        .await
        .expect("no reset");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains(r#""detail""#), "{answer}");

    // Told to wait for 100 Continue, the client sends nothing and is answered at once.
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary=b\r\n\
         content-length: {length}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n"
    );
    let answer = write_all_then_read(&app, &head, 0).await.expect("answered");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Past the bound, the body is not read: the answer says the connection closes.
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = "POST /api/upload HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; \
                boundary=b\r\ncontent-length: 104857600\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = socket.read(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).to_lowercase();
    assert!(answer.starts_with("http/1.1 401"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
}
