//! The GraphQL surface against hostile documents: fragment bombs refused before validation (in a
//! separate server process whose memory is measured), one budget per HTTP request across a batch,
//! one password-hashing field per request, multipart `operations` bounded and uploads refused
//! before reading for strangers, NUL characters refused alike on both databases, and the settings
//! that turn introspection, suggestions and GraphiQL off.
use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    files::{BOUNDARY, file_part, gql_multipart, multipart, post_body, post_expect, text_part},
    helpers::{
        PASSWORD, TestApp, error_code, error_message, spawn_app, spawn_with_config, test_config,
    },
};

/// `levels` fragments, each spreading the one below twice: 2^levels selections once expanded.
fn fragment_bomb(levels: usize) -> String {
    let mut query = format!("query Bomb {{ ...F{levels} }} fragment F0 on Query {{ __typename }}");
    for level in 1..=levels {
        let below = level - 1;
        query.push_str(&format!(
            " fragment F{level} on Query {{ ...F{below} ...F{below} }}"
        ));
    }
    query
}

/// POSTs a raw JSON body and returns (status, JSON).
async fn post_json(app: &TestApp, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The release of `goftgu` as its own process, so its memory can be read apart from the tests'.
pub(crate) struct ServerProcess {
    pub(crate) child: std::process::Child,
    pub(crate) base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_process(dir: &std::path::Path) -> ServerProcess {
    let config = test_config(dir).await;
    start_process_on(
        dir,
        &config.database_url.clone().unwrap_or_default(),
        &config.jwt_secret.clone().unwrap_or_default(),
        &[],
    )
    .await
}

/// The `goftgu` binary as a child process on `database_url` (a restart passes the same one),
/// with `env` added; healthy when this returns.
pub(crate) async fn start_process_on(
    dir: &std::path::Path,
    database_url: &str,
    jwt_secret: &str,
    env: &[(&str, &str)],
) -> ServerProcess {
    let port = crate::helpers::free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_goftgu"))
        .arg("serve")
        .env("RUST_LOG", "warn")
        .env("PORT", port.to_string())
        .env("GOFTGU_HOST", "127.0.0.1")
        .env("GOFTGU_DATA_DIR", dir)
        .env("DATABASE_URL", database_url)
        .env("JWT_SECRET", jwt_secret)
        .envs(env.iter().copied())
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("server process starts");
    let server = ServerProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{}/healthz", server.base)).send().await
            && response.status() == 200
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server process did not become healthy");
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_at_once_without_memory_growth() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_process(dir.path()).await;
    let pid = server.child.id();
    let client = reqwest::Client::new();
    // Warm up the code paths once (allocator arenas, the first GraphQL request).
    let warm = client
        .post(format!("{}/graphql", server.base))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(warm.status(), 200);
    let before = rss_kib(pid);

    // 2^40 selections once expanded: before the guard, 22 levels took 4.5 s and 23 aborted.
    let bomb = json!({ "query": fragment_bomb(40) });
    let send = |body: Value| {
        let client = client.clone();
        let url = format!("{}/graphql", server.base);
        async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (first, second, health) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(
            send(bomb.clone()),
            send(bomb.clone()),
            client.get(format!("{}/healthz", server.base)).send()
        )
    })
    .await
    .expect("the bombs are answered at once, and /healthz beside them");
    for (status, body) in [first, second] {
        assert_eq!(status, 400, "{body}");
        assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
        assert!(error_message(&body).contains("too large"), "{body}");
    }
    assert_eq!(health.unwrap().status(), 200);
    let after = rss_kib(pid);
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );

    // The same guard holds on the WebSocket, where one operation is one request.
    let cycle =
        json!({ "query": "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }" });
    let (status, body) = send(cycle).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "BAD_USER_INPUT"),
        "{body}"
    );
}

#[tokio::test]
async fn a_bomb_inside_a_subscription_is_refused_on_the_socket() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    let ack = ws
        .init(json!({ "Authorization": format!("Bearer {}", ana.token) }))
        .await;
    assert!(format!("{ack:?}").contains("connection_ack"), "{ack:?}");
    let query = fragment_bomb(40)
        .replace("query Bomb", "subscription Bomb")
        .replace(
            "fragment F0 on Query { __typename }",
            "fragment F0 on Subscription { heartbeat }",
        );
    let query = query.replace("on Query", "on Subscription");
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }))
        .await;
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next_json())
        .await
        .expect("answered at once");
    // async-graphql answers a refused subscription with its errors, then completes it.
    assert_eq!(answer["id"], "1", "{answer}");
    let errors = if answer["type"] == "error" {
        &answer["payload"]
    } else {
        &answer["payload"]["errors"]
    };
    assert_eq!(
        errors[0]["extensions"]["code"], "BAD_USER_INPUT",
        "{answer}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_batch_shares_one_budget_and_runs_in_order() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let token = Some(ana.token.as_str());

    // Within the budget: every entry runs and answers in order.
    let small: Vec<Value> = (0..3)
        .map(|i| json!({ "query": format!("{{ n{i}: __typename me {{ username }} }}") }))
        .collect();
    let (status, body) = post_json(&app, token, &Value::Array(small)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(body[2]["data"]["n2"], "Query");

    // Too many operations.
    let many: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ __typename }" }))
        .collect();
    let (status, body) = post_json(&app, token, &Value::Array(many)).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "BAD_USER_INPUT"),
        "{body}"
    );
    assert!(
        error_message(&body).contains("at most 10 operations"),
        "{body}"
    );

    // Each entry under the per-operation limit (1,000), together over it: refused whole.
    let aliases: String = (0..300).map(|i| format!(" a{i}: __typename")).collect();
    let heavy: Vec<Value> = (0..4)
        .map(|_| json!({ "query": format!("{{{aliases} }}") }))
        .collect();
    let (status, body) = post_json(&app, token, &Value::Array(heavy.clone())).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "BAD_USER_INPUT"),
        "{body}"
    );
    assert!(error_message(&body).contains("too large"), "{body}");
    // One of them alone is fine.
    let (status, body) = post_json(&app, token, &heavy[0]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["a299"], "Query");
    app.stop().await;
}

#[tokio::test]
async fn a_second_password_field_is_refused_before_any_hashing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    // One attempt per name per minute: if the refused requests reached `login`, the real login
    // below would be rate limited.
    config.login_attempts_per_minute = 1;
    let app = spawn_with_config(config).await;
    app.register("ana").await;

    let login = |alias: &str| {
        format!(
            "{alias}: login(input: {{login: \"ana\", password: \"{PASSWORD}\"}}) {{ accessToken }}"
        )
    };
    let aliased = format!("mutation {{ {} {} }}", login("a"), login("b"));
    let (status, body) = post_json(&app, None, &json!({ "query": aliased })).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "BAD_USER_INPUT"),
        "{body}"
    );
    assert!(error_message(&body).contains("at most one"), "{body}");

    let batch = json!([
        { "query": format!("mutation {{ {} }}", login("a")) },
        { "query": format!("mutation {{ {} }}", login("b")) },
    ]);
    let (status, body) = post_json(&app, None, &batch).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "BAD_USER_INPUT"),
        "{body}"
    );

    let through_fragment = format!(
        "mutation {{ {} ...R }} fragment R on Mutation {{ register(input: {{username: \"eve\", email: \"eve@example.com\", password: \"{PASSWORD}\"}}) {{ accessToken }} }}",
        login("a")
    );
    let (status, body) = post_json(&app, None, &json!({ "query": through_fragment })).await;
    assert_eq!(
        (status, error_code(&body)),
        (400, "BAD_USER_INPUT"),
        "{body}"
    );

    // Thirty aliased registrations create no account.
    let registrations: String = (0..30)
        .map(|i| format!(" r{i}: register(input: {{username: \"bot{i}\", email: \"bot{i}@example.com\", password: \"{PASSWORD}\"}}) {{ accessToken }}"))
        .collect();
    let (status, body) = post_json(
        &app,
        None,
        &json!({ "query": format!("mutation {{{registrations} }}") }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let ana = app.login("ana", PASSWORD).await;
    assert!(
        ana["errors"].is_null(),
        "the single login still has its attempt: {ana}"
    );
    let token = ana["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let found = app
        .gql_ok(
            Some(&token),
            "{ users(search: \"bot\") { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(found["users"]["totalCount"], 0, "{found}");
    app.stop().await;
}

#[tokio::test]
async fn multipart_operations_obey_the_json_limit_and_strangers_are_refused_before_reading() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    // 7 MiB of `operations` (the JSON limit is 1 MiB).
    let padding = "x".repeat(7 * 1024 * 1024);
    let operations = json!({ "query": "mutation($f: Upload!){ uploadFile(file: $f){ id } }", "variables": { "f": null }, "pad": padding });
    let body = multipart(&[
        text_part("operations", &operations.to_string()),
        text_part("map", &json!({ "0": ["variables.f"] }).to_string()),
    ]);

    let anonymous = post_body(&app, None, "/graphql", body.clone()).await;
    assert_eq!(anonymous.status(), 401);
    let anonymous: Value = anonymous.json().await.unwrap();
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");

    let signed_in = post_body(&app, Some(&ana.token), "/graphql", body).await;
    assert_eq!(signed_in.status(), 413);
    let detail: Value = signed_in.json().await.unwrap();
    assert!(
        detail["detail"].as_str().unwrap().contains("operations"),
        "{detail}"
    );

    // Parts out of order, and a file the map does not name, are refused.
    let out_of_order = multipart(&[
        text_part("map", &json!({ "0": ["variables.f"] }).to_string()),
        text_part(
            "operations",
            &json!({ "query": "{ __typename }" }).to_string(),
        ),
    ]);
    let response = post_body(&app, Some(&ana.token), "/graphql", out_of_order).await;
    assert_eq!(response.status(), 400);
    let unnamed = gql_multipart_status(
        &app,
        &ana.token,
        json!({ "query": "mutation($f: Upload!){ uploadFile(file: $f){ id } }", "variables": { "f": null } }),
        json!({ "0": ["variables.f"] }),
        "9",
    )
    .await;
    assert_eq!(unnamed, 400);

    // A well-formed upload still works.
    let ok = gql_multipart(
        &app,
        &ana.token,
        json!({ "query": "mutation($f: Upload!){ uploadFile(file: $f){ size } }", "variables": { "f": null } }),
        json!({ "0": ["variables.f"] }),
        vec![crate::files::named_file_part("0", "a.txt", "text/plain", b"hello".to_vec())],
    )
    .await;
    assert_eq!(ok["data"]["uploadFile"]["size"], 5, "{ok}");
    app.stop().await;
}

async fn gql_multipart_status(
    app: &TestApp,
    token: &str,
    operations: Value,
    map: Value,
    file_part_name: &str,
) -> u16 {
    let body = multipart(&[
        text_part("operations", &operations.to_string()),
        text_part("map", &map.to_string()),
        crate::files::named_file_part(file_part_name, "a.txt", "text/plain", b"hi".to_vec()),
    ]);
    post_body(app, Some(token), "/graphql", body)
        .await
        .status()
        .as_u16()
}

#[tokio::test]
async fn rest_upload_text_fields_are_few_and_small() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let file = || file_part("a.txt", "text/plain", b"hello".to_vec());
    let mut many: Vec<_> = (0..9).map(|i| text_part(&format!("f{i}"), "x")).collect();
    many.push(file());
    let refused = post_expect(&app, &ana.token, "/api/upload", &many, 400).await;
    assert!(
        refused["detail"].as_str().unwrap().contains("text parts"),
        "{refused}"
    );

    let big = "y".repeat(15 * 1024);
    let parts = [
        text_part("a", &big),
        text_part("b", &big),
        text_part("c", &big),
        file(),
    ];
    post_expect(&app, &ana.token, "/api/upload", &parts, 400).await;

    let nul = [text_part("title", "a\u{0}b"), file()];
    post_expect(&app, &ana.token, "/music/upload", &nul, 400).await;

    let fine = [text_part("note", "ok"), file()];
    post_expect(&app, &ana.token, "/api/upload", &fine, 201).await;
    let _ = BOUNDARY;
    app.stop().await;
}

#[tokio::test]
async fn nul_characters_are_bad_input_on_every_backend() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let token = Some(ana.token.as_str());
    let chat = app
        .gql_ok(
            token,
            "mutation($u: String!) { openDirectChat(identifier: $u) { id } }",
            json!({ "u": ben.username }),
        )
        .await["openDirectChat"]["id"]
        .clone();
    let cases = [
        (
            token,
            "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, content: $t}) { id } }",
            json!({ "c": chat, "t": "hi\u{0}there" }),
        ),
        (
            token,
            "query($t: String!) { searchMessages(query: $t) { totalCount } }",
            json!({ "t": "a\u{0}" }),
        ),
        (
            token,
            "query($t: String) { users(search: $t) { totalCount } }",
            json!({ "t": "\u{0}" }),
        ),
        (
            None,
            "mutation($l: String!) { login(input: {login: $l, password: \"whatever\"}) { accessToken } }",
            json!({ "l": "ana\u{0}" }),
        ),
        // A literal in the document, not a variable.
        (
            token,
            "{ users(search: \"a\\u0000\") { totalCount } }",
            json!({}),
        ),
    ];
    for (token, query, variables) in cases {
        let (status, body) = post_json(
            &app,
            token,
            &json!({ "query": query, "variables": variables }),
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (400, "BAD_USER_INPUT"),
            "{query}: {body}"
        );
        assert!(error_message(&body).contains("NUL"), "{body}");
    }
    // Nothing was stored.
    let history = app
        .gql_ok(
            token,
            "query($c: ID!) { messages(chatId: $c, first: 5) { totalCount } }",
            json!({ "c": chat }),
        )
        .await;
    assert_eq!(history["messages"]["totalCount"], 0, "{history}");
    app.stop().await;
}

/// `GET /graphql` as a browser asks for it.
async fn graphiql_page(app: &TestApp) -> reqwest::Response {
    app.client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn production_settings_turn_off_introspection_suggestions_and_graphiql() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    config.introspection = false;
    config.field_suggestions = false;
    config.graphiql = false;
    let app = spawn_with_config(config).await;

    // async-graphql answers introspection with nulls when it is off: nothing of the schema shows.
    for (query, field) in [
        ("{ __schema { types { name } } }", "__schema"),
        ("{ __type(name: \"User\") { name } }", "__type"),
    ] {
        let (_, body) = post_json(&app, None, &json!({ "query": query })).await;
        assert!(body["data"][field].is_null(), "{body}");
    }

    let (_, body) = post_json(&app, None, &json!({ "query": "{ chatss { totalCount } }" })).await;
    assert!(!error_message(&body).contains("Did you mean"), "{body}");

    let page = graphiql_page(&app).await;
    assert_eq!(page.status(), 404);
    let sdl = app
        .client
        .get(format!("{}/schema.graphql", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(sdl.status(), 404);
    app.stop().await;

    // The defaults: all three on, and the page carries its security headers.
    let (app, _dir) = spawn_app().await;
    let (_, body) = post_json(&app, None, &json!({ "query": "{ chatss { totalCount } }" })).await;
    assert!(error_message(&body).contains("Did you mean"), "{body}");
    let page = graphiql_page(&app).await;
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self' 'sha256-"), "{csp}");
    assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("x-content-type-options"), "nosniff");
    app.stop().await;
}
