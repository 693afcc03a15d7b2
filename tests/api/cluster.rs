//! Two instances sharing one PostgreSQL database and one Redis: a subscriber on instance A
//! receives what is sent through instance B, presence is shared, and a Redis restart neither
//! crashes an instance nor stops delivery for good. These need real services, so they run when
//! TEST_DATABASE_URL and TEST_REDIS_URL are set (as `.ci/run` does) and say so when they are not.
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde_json::json;

use crate::fixtures::{create_group, send};
use crate::helpers::{TestApp, WsClient, WsEvent, spawn_with_config, test_config};

/// Both TEST_DATABASE_URL and TEST_REDIS_URL (the Redis URL), or `None` with a "not run" line.
pub(crate) fn services() -> Option<String> {
    match (
        std::env::var("TEST_DATABASE_URL"),
        std::env::var("TEST_REDIS_URL"),
    ) {
        (Ok(_), Ok(redis)) => Some(redis),
        _ => {
            eprintln!("needs TEST_DATABASE_URL and TEST_REDIS_URL; not run");
            None
        }
    }
}

/// Two instances on one fresh database, one Redis (at `redis_url`), one channel prefix.
async fn spawn_pair(redis_url: &str) -> (TestApp, TestApp, Vec<tempfile::TempDir>) {
    spawn_pair_with(redis_url, |_| {}).await
}

/// Like `spawn_pair`, with the configuration both instances share changed by `change`.
pub(crate) async fn spawn_pair_with(
    redis_url: &str,
    change: impl FnOnce(&mut goftgu::Config),
) -> (TestApp, TestApp, Vec<tempfile::TempDir>) {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = test_config(dir_a.path()).await;
    config_a.redis_url = Some(redis_url.to_string());
    change(&mut config_a);
    let mut config_b = config_a.clone();
    config_b.data_dir = dir_b.path().to_path_buf();
    let a = spawn_with_config(config_a).await;
    let b = spawn_with_config(config_b).await;
    (a, b, vec![dir_a, dir_b])
}

/// Waits until some instance subscribed to the chat's Redis channel.
pub(crate) async fn wait_for_channel(redis_url: &str, app: &TestApp, chat_id: &str) {
    let channel = format!("{}chat:{chat_id}", app.state.config.redis_prefix);
    wait_for_subscriber(redis_url, &channel).await;
}

/// Waits until some instance subscribed to `channel` in Redis (within 15 s).
pub(crate) async fn wait_for_subscriber(redis_url: &str, channel: &str) {
    let client = redis::Client::open(redis_url).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
            let counts: redis::RedisResult<(String, i64)> = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(channel)
                .query_async(&mut conn)
                .await;
            if counts.is_ok_and(|(_, n)| n > 0) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no instance subscribed to {channel}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A socket subscribed to a chat's events (acknowledged, and the subscription running).
pub(crate) async fn subscribe_chat(app: &TestApp, token: &str, chat_id: &str) -> WsClient {
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    let ack = ws
        .init(json!({ "Authorization": format!("Bearer {token}") }))
        .await;
    assert!(
        matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"),
        "{ack:?}"
    );
    let query = "subscription($c: ID!) { chatEvents(chatId: $c) { __typename ... on MessageCreated { message { content } } } }";
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": { "c": chat_id } } })).await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next_json().await["type"], "pong");
    ws
}

/// The content of the next MessageCreated on the socket, skipping other events.
pub(crate) async fn next_message(ws: &mut WsClient) -> String {
    loop {
        let message = ws.next_json().await;
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["chatEvents"];
        if event["__typename"] == "MessageCreated" {
            return event["message"]["content"].as_str().unwrap().to_string();
        }
    }
}

async fn token_on(app: &TestApp, username: &str) -> String {
    app.login_token(username).await
}

#[tokio::test]
async fn a_subscriber_on_one_instance_receives_what_another_instance_sends() {
    let Some(redis_url) = services() else { return };
    let (a, b, _dirs) = spawn_pair(&redis_url).await;
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    let chat = create_group(&a, &alice.token, "across", &["bob"]).await;
    let alice_on_b = token_on(&b, "alice").await;

    let mut ws = subscribe_chat(&a, &bob.token, &chat).await;
    wait_for_channel(&redis_url, &a, &chat).await;

    let mut latencies = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        send(&b, &alice_on_b, &chat, &format!("hello {i}")).await;
        assert_eq!(
            next_message(&mut ws).await,
            format!("hello {i}"),
            "in order, exactly once"
        );
        latencies.push(started.elapsed());
    }
    latencies.sort();
    eprintln!(
        "cross-instance delivery (send request start → event received): median {:?}, max {:?}",
        latencies[2], latencies[4]
    );
}

#[tokio::test]
async fn presence_is_shared_between_instances() {
    let Some(redis_url) = services() else { return };
    let (a, b, _dirs) = spawn_pair(&redis_url).await;
    let alice = a.register("alice").await;
    let bob_on_b = b.register("bob").await;
    let query = "query($id: ID!) { user(id: $id) { isOnline lastSeen } }";
    let vars = json!({ "id": alice.id });

    let before = b.gql_ok(Some(&bob_on_b.token), query, vars.clone()).await;
    assert_eq!(before["user"]["isOnline"], false);

    let mut ws = a.ws("/graphql/ws", "graphql-transport-ws").await;
    let ack = ws
        .init(json!({ "Authorization": format!("Bearer {}", alice.token) }))
        .await;
    assert!(matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"));
    let online = b.gql_ok(Some(&bob_on_b.token), query, vars.clone()).await;
    assert_eq!(
        online["user"]["isOnline"], true,
        "B sees a socket held by A"
    );

    ws.stream.close(None).await.ok();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = b.gql_ok(Some(&bob_on_b.token), query, vars.clone()).await;
        // The user row (lastSeen) is read before isOnline is resolved, so one answer can catch
        // the moment between them: wait until both show the disconnect.
        if after["user"]["isOnline"] == false && after["user"]["lastSeen"].is_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not offline with a lastSeen 5 s after the socket closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A private redis-server on a free port, so restarting it disturbs no other test (the rate-limit
/// tests stop one too).
pub(crate) struct PrivateRedis {
    port: u16,
    child: std::process::Child,
}

impl PrivateRedis {
    pub(crate) fn start(port: u16) -> Self {
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs");
        Self { port, child }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub(crate) async fn wait_ready(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        for _ in 0..100 {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                let pong: redis::RedisResult<String> = conn.ping().await;
                if pong.is_ok() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start");
    }

    pub(crate) fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn a_redis_restart_neither_crashes_instances_nor_stops_delivery() {
    if services().is_none() {
        return;
    }
    let port = crate::helpers::free_port();
    let mut redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let (a, b, _dirs) = spawn_pair(&redis.url()).await;
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    let chat = create_group(&a, &alice.token, "restart", &["bob"]).await;
    let alice_on_b = token_on(&b, "alice").await;
    let mut ws = subscribe_chat(&a, &bob.token, &chat).await;
    wait_for_channel(&redis.url(), &a, &chat).await;
    send(&b, &alice_on_b, &chat, "before").await;
    assert_eq!(next_message(&mut ws).await, "before");

    redis.stop();
    // Both instances keep serving: the message is stored even though it cannot be fanned out.
    send(&b, &alice_on_b, &chat, "during").await;
    for app in [&a, &b] {
        let health = app.health().await;
        assert_eq!(health.status(), 200);
    }

    let redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    wait_for_channel(&redis.url(), &a, &chat).await;
    // Delivery resumes by itself (the publisher may need one failed attempt to reconnect).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let text = format!("after {attempt}");
        send(&b, &alice_on_b, &chat, &text).await;
        let got = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match ws.next().await {
                    WsEvent::Json(m)
                        if m["payload"]["data"]["chatEvents"]["message"]["content"]
                            == text.as_str() =>
                    {
                        return true;
                    }
                    WsEvent::Json(_) => continue,
                    WsEvent::Closed(..) => return false,
                }
            }
        })
        .await;
        if got == Ok(true) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "delivery did not resume after Redis came back"
        );
    }
    // What the subscriber missed during the outage is there to catch up on.
    let history = a
        .gql_ok(
            Some(&bob.token),
            "query($c: ID!) { messages(chatId: $c, first: 100) { nodes { content } } }",
            json!({ "c": chat }),
        )
        .await;
    let contents: Vec<&str> = history["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["content"].as_str().unwrap())
        .collect();
    assert_eq!(&contents[..2], ["before", "during"]);
}

#[tokio::test]
async fn logging_out_on_one_instance_closes_the_sessions_socket_on_another() {
    let Some(redis_url) = services() else { return };
    let (a, b, _dirs) = spawn_pair(&redis_url).await;
    let alice = a.register("alice").await;
    let mut ws = a.ws("/graphql/ws", "graphql-transport-ws").await;
    let ack = ws
        .init(json!({ "Authorization": format!("Bearer {}", alice.token) }))
        .await;
    assert!(matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"));
    // A's socket follows its user's channel; wait until Redis knows.
    let channel = format!("{}user:{}", a.state.config.redis_prefix, alice.id);
    wait_for_subscriber(&redis_url, &channel).await;
    b.gql_ok(Some(&alice.token), "mutation { logout }", json!({}))
        .await;
    loop {
        match ws.next().await {
            WsEvent::Closed(code, reason) => {
                assert_eq!(code, Some(4403));
                assert!(reason.contains("revoked"), "{reason}");
                break;
            }
            WsEvent::Json(_) => continue,
        }
    }
}

/// What a subscriber received: message contents in arrival order, and resync notices.
#[derive(Default)]
struct Received {
    contents: Vec<String>,
    resyncs: usize,
}

/// Reads chat events until `until(received)` holds, or panics after `within`.
async fn receive_until(
    ws: &mut WsClient,
    received: &mut Received,
    within: Duration,
    until: impl Fn(&Received) -> bool,
) {
    let deadline = Instant::now() + within;
    while !until(received) {
        assert!(
            Instant::now() < deadline,
            "after {within:?}: {} messages, {} resyncs; last {:?}",
            received.contents.len(),
            received.resyncs,
            received.contents.last()
        );
        // Silence is expected while Redis is down; `next_json` alone gives up after 5 s.
        let Ok(message) = tokio::time::timeout(Duration::from_secs(2), ws.next_json()).await else {
            continue;
        };
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["chatEvents"];
        match event["__typename"].as_str() {
            Some("MessageCreated") => received
                .contents
                .push(event["message"]["content"].as_str().unwrap().to_string()),
            Some("ResyncRequired") => received.resyncs += 1,
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_redis_outage_mid_stream_loses_no_acknowledged_message_and_repeats_none() {
    if services().is_none() {
        return;
    }
    let port = crate::helpers::free_port();
    let mut redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let (a, b, _dirs) = spawn_pair_with(&redis.url(), |c| c.limits.send_per_minute = 0).await;
    let alice = a.register("alice").await;
    let bob = a.register("bob").await;
    let chat = create_group(&a, &alice.token, "outage", &["bob"]).await;
    let alice_on_b = token_on(&b, "alice").await;
    let mut ws = subscribe_chat(&a, &bob.token, &chat).await;
    wait_for_channel(&redis.url(), &a, &chat).await;

    // Alice sends through B at a steady pace; Redis is down for 3 s in the middle.
    let total = 160;
    let pace = Duration::from_millis(50);
    let mut received = Received::default();
    let sending = async {
        let started = Instant::now();
        for i in 0..total {
            send(&b, &alice_on_b, &chat, &format!("n{i}")).await;
            tokio::time::sleep_until((started + pace * (i + 1)).into()).await;
        }
    };
    let outage = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        redis.stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let restarted = PrivateRedis::start(port);
        restarted.wait_ready().await;
        restarted
    };
    // Until every message and the notice that the link was interrupted (A's subscription to
    // Redis dropped for certain, so other events may have been lost) arrived.
    let reading = receive_until(&mut ws, &mut received, Duration::from_secs(60), |r| {
        r.contents.len() >= total as usize && r.resyncs >= 1
    });
    let ((), restarted, ()) = tokio::join!(sending, outage, reading);
    let mut redis = restarted;
    let expected: Vec<String> = (0..total).map(|i| format!("n{i}")).collect();
    assert_eq!(
        received.contents, expected,
        "every acknowledged message once, in seq order"
    );
    let filled = a
        .state
        .bus
        .stats()
        .filled
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "Redis down 3 s while {total} messages were sent through B at one per {pace:?}: \
         acknowledged {total}, delivered {} (live {}, filled in from the database {filled}), \
         resync signals {}",
        received.contents.len(),
        received.contents.len() as u64 - filled,
        received.resyncs
    );

    // Messages sent while Redis is down and nothing after: the restored link alone heals.
    wait_for_channel(&redis.url(), &a, &chat).await;
    redis.stop();
    for i in 0..5 {
        send(&b, &alice_on_b, &chat, &format!("quiet{i}")).await;
    }
    let redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let mut tail = Received::default();
    receive_until(&mut ws, &mut tail, Duration::from_secs(30), |r| {
        r.contents.len() >= 5
    })
    .await;
    let quiet: Vec<String> = (0..5).map(|i| format!("quiet{i}")).collect();
    assert_eq!(tail.contents, quiet, "filled in after the link came back");
    eprintln!(
        "Redis down with 5 messages sent and none after: all 5 delivered once after it came back \
         ({} resync signals)",
        tail.resyncs
    );
    // Nothing is repeated later (the publisher's retries arrive as duplicates and are dropped).
    send(&b, &alice_on_b, &chat, "last").await;
    let mut last = Received::default();
    receive_until(&mut ws, &mut last, Duration::from_secs(30), |r| {
        r.contents.last().is_some_and(|c| c == "last")
    })
    .await;
    assert_eq!(
        last.contents,
        ["last"],
        "no duplicates before the next message"
    );
}
