//! Stopping an instance (what SIGTERM does; `TestApp::stop` gives the same signal): readiness
//! turns 503 at once, requests in flight finish and what they acknowledged is stored, every
//! WebSocket is closed with 1012, this instance's presence claims in Redis are gone at once, and
//! the stop is bounded by `GOFTGU_DRAIN_SECONDS` whatever a client does.
use std::time::Instant;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tower::ServiceExt;

use crate::cluster::{next_message, services, spawn_pair_with, subscribe_chat};
use crate::fixtures::create_group;
use crate::helpers::{TestApp, TestUser, WsClient, WsEvent, spawn_with_config, test_config};

const SEND: &str = "mutation($chatId: ID!, $content: String!) { sendMessage(input: {chatId: $chatId, content: $content}) { id } }";

/// A `sendMessage` whose body the test holds back: the headers went out with
/// `Expect: 100-continue`, and the server's `100 Continue` proves the handler is running.
struct HeldRequest {
    stream: TcpStream,
    body: String,
}

impl HeldRequest {
    async fn start(app: &TestApp, user: &TestUser, chat: &str, content: &str) -> Self {
        let body = json!({ "query": SEND, "variables": { "chatId": chat, "content": content } })
            .to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            user.token,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut seen = Vec::new();
        while !seen.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "closed early");
            seen.push(byte[0]);
        }
        let seen = String::from_utf8(seen).unwrap();
        assert!(seen.starts_with("HTTP/1.1 100"), "{seen}");
        Self { stream, body }
    }

    /// Sends the body; the status line and the JSON answer, or `None` if the connection was cut.
    async fn finish(mut self) -> Option<(String, Value)> {
        self.stream.write_all(self.body.as_bytes()).await.ok()?;
        self.read_answer().await
    }

    async fn read_answer(&mut self) -> Option<(String, Value)> {
        let mut raw = Vec::new();
        self.stream.read_to_end(&mut raw).await.ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (head, body) = raw.split_once("\r\n\r\n")?;
        let status = head.lines().next()?.to_string();
        // The answer is chunked or has a length; the JSON object is all that matters here.
        let start = body.find('{')?;
        let end = body.rfind('}')?;
        Some((status, serde_json::from_str(&body[start..=end]).ok()?))
    }
}

/// `GET /readyz` through the instance's own router (its listener is closed while it drains).
async fn readiness(state: &goftgu::AppState) -> (u16, Value) {
    let state = state.clone();
    let documents = std::sync::Arc::new(goftgu::graphql::documents::DocumentCache::new(
        &state.metrics,
    ));
    let schema = goftgu::graphql::build_schema(state.clone(), documents.clone());
    let router = goftgu::http::router(state, schema, documents);
    let request = axum::http::Request::get("/readyz")
        .body(axum::body::Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

/// The close code a socket ends with, skipping the events still on their way.
async fn close_code(ws: &mut WsClient) -> Option<u16> {
    loop {
        match ws.next().await {
            WsEvent::Json(_) => continue,
            WsEvent::Closed(code, _) => return code,
        }
    }
}

/// The ids of `chat`'s stored messages, as `user` reads them.
async fn stored_ids(app: &TestApp, user: &TestUser, chat: &str) -> Vec<String> {
    let data = app
        .gql_ok(
            Some(&user.token),
            "query($c: ID!) { messages(chatId: $c, last: 100) { nodes { id } } }",
            json!({ "c": chat }),
        )
        .await;
    data["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect()
}

/// How many instances claim in Redis that `user` is online (`<prefix>online:<user>`).
async fn claims(state: &goftgu::AppState, redis_url: &str, user: &TestUser) -> i64 {
    let key = format!("{}online:{}", state.config.redis_prefix, user.id);
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HLEN")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn stopping_under_load_keeps_every_acknowledged_message_and_closes_sockets_with_1012() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    // The burst is the point here, not the per-user send limit.
    config.limits.send_per_minute = 10_000;
    config.limits.send_burst = 10_000;
    let redis_url = config.redis_url.clone();
    let app = spawn_with_config(config.clone()).await;
    assert_eq!(readiness(&app.state).await, (200, json!({ "ready": true })));
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "over the wire too");

    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let chat = create_group(&app, &alice.token, "drain", &["bob"]).await;
    let mut sockets = vec![
        subscribe_chat(&app, &bob.token, &chat).await,
        subscribe_chat(&app, &alice.token, &chat).await,
        subscribe_chat(&app, &bob.token, &chat).await,
    ];
    if let Some(redis_url) = &redis_url {
        assert_eq!(
            claims(&app.state, redis_url, &bob).await,
            1,
            "bob's claim is there"
        );
    }

    // One send held in flight across the stop, and a burst racing it.
    let held = HeldRequest::start(&app, &alice, &chat, "held across the stop").await;
    let burst: Vec<_> = (0..40)
        .map(|i| {
            let client = reqwest::Client::new();
            let url = format!("{}/graphql", app.address);
            let token = alice.token.clone();
            let chat = chat.clone();
            tokio::spawn(async move {
                let body = json!({ "query": SEND, "variables": { "chatId": chat, "content": format!("burst {i}") } });
                let response = client.post(url).bearer_auth(token).json(&body).send().await.ok()?;
                if response.status() != 200 {
                    return None;
                }
                let answer: Value = response.json().await.ok()?;
                answer["data"]["sendMessage"]["id"].as_str().map(str::to_string)
            })
        })
        .collect();
    // Let the burst get under way (some answered, some in flight), then stop.
    let first = next_message(&mut sockets[0]).await;
    assert!(first.starts_with("burst "), "{first}");

    let state = app.state.clone();
    let started = Instant::now();
    let stopping = tokio::spawn(app.stop());
    state.drain.draining().await;

    // Not ready at once, while a request is still in flight.
    assert_eq!(
        readiness(&state).await,
        (503, json!({ "ready": false, "detail": "draining" }))
    );
    // Every socket is told to reconnect elsewhere.
    for ws in &mut sockets {
        assert_eq!(close_code(ws).await, Some(1012));
    }
    // The claims went before the sockets were closed, not when they expire.
    if let Some(redis_url) = &redis_url {
        assert_eq!(
            claims(&state, redis_url, &bob).await,
            0,
            "bob's claim is gone"
        );
        assert_eq!(claims(&state, redis_url, &alice).await, 0);
    }

    // The request in flight finishes and is answered.
    let (status, answer) = held.finish().await.expect("the held request was answered");
    assert!(status.contains(" 200 "), "{status}: {answer}");
    let held_id = answer["data"]["sendMessage"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    stopping.await.unwrap();
    eprintln!(
        "drain with a held request and {} sockets: {} ms",
        sockets.len(),
        started.elapsed().as_millis()
    );

    let mut acknowledged = vec![held_id];
    for send in burst {
        acknowledged.extend(send.await.unwrap());
    }
    // Reopen the same database: everything acknowledged is there.
    let reopened = spawn_with_config(config).await;
    let stored = stored_ids(&reopened, &alice, &chat).await;
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged message {id} was lost");
    }
    eprintln!(
        "{} of 41 sends acknowledged, all stored ({} stored)",
        acknowledged.len(),
        stored.len()
    );
    reopened.stop().await;
}

#[tokio::test]
async fn a_drain_ends_at_its_deadline_whatever_a_client_holds_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    config.drain_seconds = 1;
    // The held body would otherwise be waited for far longer than `stop` allows.
    config.body_timeout_seconds = 3600;
    let app = spawn_with_config(config).await;
    let alice = app.register("alice").await;
    let chat = create_group(&app, &alice.token, "deadline", &[]).await;
    let mut ws = subscribe_chat(&app, &alice.token, &chat).await;
    let mut held = HeldRequest::start(&app, &alice, &chat, "never finished").await;

    let started = Instant::now();
    // `stop` itself fails the test if the server is not gone within 10 s.
    app.stop().await;
    eprintln!(
        "drain with a request that never finishes, GOFTGU_DRAIN_SECONDS=1: {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(close_code(&mut ws).await, Some(1012));
    assert!(
        held.read_answer().await.is_none(),
        "the unfinished request's connection is dropped without an answer"
    );
}

#[tokio::test]
async fn an_instance_with_open_sockets_and_nothing_in_flight_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path()).await;
    let app = spawn_with_config(config).await;
    let alice = app.register("alice").await;
    let chat = create_group(&app, &alice.token, "idle", &[]).await;
    let mut sockets = Vec::new();
    for _ in 0..5 {
        sockets.push(subscribe_chat(&app, &alice.token, &chat).await);
    }
    let mut legacy = app.ws("/graphql", "graphql-ws").await;
    let ack = legacy
        .init(json!({ "Authorization": format!("Bearer {}", alice.token) }))
        .await;
    assert!(
        matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"),
        "{ack:?}"
    );
    let started = Instant::now();
    app.stop().await;
    eprintln!(
        "drain with {} idle sockets: {} ms",
        sockets.len() + 1,
        started.elapsed().as_millis()
    );
    sockets.push(legacy);
    for ws in &mut sockets {
        assert_eq!(close_code(ws).await, Some(1012));
    }
}

/// With two instances on one database and Redis: the users of the one that stops are offline on
/// the other right after (their claims went at once, not after the TTL).
#[tokio::test]
async fn the_other_instance_sees_the_stopped_instances_users_offline_at_once() {
    let Some(redis_url) = services() else { return };
    let (a, b, _dirs) = spawn_pair_with(&redis_url, |_| {}).await;
    let alice = a.register("alice").await;
    let bob_on_b = b.register("bob").await;
    let chat = create_group(&a, &alice.token, "pair", &["bob"]).await;
    let _ws = subscribe_chat(&a, &alice.token, &chat).await;
    let query = "query($id: ID!) { user(id: $id) { isOnline } }";
    let vars = json!({ "id": alice.id });
    let online = b.gql_ok(Some(&bob_on_b.token), query, vars.clone()).await;
    assert_eq!(online["user"]["isOnline"], true);

    a.stop().await;
    let after = b.gql_ok(Some(&bob_on_b.token), query, vars).await;
    assert_eq!(after["user"]["isOnline"], false, "offline at once on B");
    assert_eq!(claims(&b.state, &redis_url, &alice).await, 0);
    b.stop().await;
}
