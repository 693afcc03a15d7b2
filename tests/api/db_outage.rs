//! A database outage is an outage, not a logout. A TCP proxy written here sits between the server
//! and PostgreSQL; cutting it drops every open connection and either refuses new ones or lets
//! them hang (a silent network). While it is cut, a valid token is answered 503 + Retry-After
//! (`INTERNAL` with `retryAfter`), never 401, and a new socket is closed with 1013, never 4403;
//! once restored, the same token works and a socket held through the outage still receives
//! events. An instance started during the outage waits for the database. These need PostgreSQL,
//! so they run when TEST_DATABASE_URL is set and say so when it is not.
use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use goftgu::{Application, Config};
use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::{
    cluster::{next_message, subscribe_chat},
    file_bytes::png,
    files::{file_part, post_parts},
    fixtures::{create_group, send},
    helpers::{TestApp, WsClient, WsEvent, spawn_with_config, test_config},
};

/// What the proxy does with connections while it is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Forwards to PostgreSQL.
    Up,
    /// Closes every new connection at once (the server is down).
    Refuse,
    /// Accepts new connections and never answers (packets are lost).
    Silent,
}

/// A TCP proxy in front of PostgreSQL that a test can cut and restore.
struct DbProxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Bumped at every cut and restore: open connections end on it.
    generation: watch::Sender<u64>,
    /// Connections turned away (refused or left hanging) so far.
    turned_away: Arc<AtomicUsize>,
}

impl DbProxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(Mode::Up));
        let (generation, _) = watch::channel(0u64);
        let turned_away = Arc::new(AtomicUsize::new(0));
        let proxy = Self {
            addr,
            mode: mode.clone(),
            generation: generation.clone(),
            turned_away: turned_away.clone(),
        };
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let current = *mode.lock().unwrap();
                let mut ended = generation.subscribe();
                if current != Mode::Up {
                    turned_away.fetch_add(1, Ordering::SeqCst);
                }
                match current {
                    Mode::Refuse => drop(client),
                    Mode::Silent => {
                        tokio::spawn(async move {
                            let _held = client;
                            let _ = ended.changed().await;
                        });
                    }
                    Mode::Up => {
                        let upstream = upstream.clone();
                        tokio::spawn(async move {
                            let Ok(mut server) = TcpStream::connect(&upstream).await else {
                                return;
                            };
                            let mut client = client;
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = ended.changed() => {}
                            }
                        });
                    }
                }
            }
        });
        proxy
    }

    /// Drops every open connection; new ones are handled as `mode` says.
    fn cut(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        self.generation.send_modify(|g| *g += 1);
    }

    /// Forwards again (connections left hanging are released).
    fn restore(&self) {
        *self.mode.lock().unwrap() = Mode::Up;
        self.generation.send_modify(|g| *g += 1);
    }

    fn turned_away(&self) -> usize {
        self.turned_away.load(Ordering::SeqCst)
    }

    /// Waits until `count` connections have been turned away in all.
    async fn wait_turned_away(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.turned_away() < count {
            assert!(
                Instant::now() < deadline,
                "only {} attempts",
                self.turned_away()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A fresh database reached through a new proxy, or `None` (and "not run") without PostgreSQL.
async fn behind_proxy() -> Option<(Config, DbProxy, tempfile::TempDir)> {
    if std::env::var("TEST_DATABASE_URL").is_err() {
        eprintln!("database outage tests need TEST_DATABASE_URL; not run");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    let mut url = reqwest::Url::parse(config.database_url.as_deref().unwrap()).unwrap();
    let upstream = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    );
    let proxy = DbProxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    config.database_url = Some(url.to_string());
    // An outage is answered within a second.
    config.db_acquire_timeout_seconds = 1;
    Some((config, proxy, dir))
}

fn bearer(token: &str) -> Value {
    json!({ "Authorization": format!("Bearer {token}") })
}

/// Waits for the message `content`, skipping warm-up messages that arrive late.
async fn receive(ws: &mut WsClient, content: &str) {
    loop {
        let got = next_message(ws).await;
        if got == content {
            return;
        }
        assert!(got.starts_with("warm-up"), "expected {content}, got {got}");
    }
}

/// Sends warm-up messages until the socket receives one: its subscription, registered after
/// its database checks, is then listening.
async fn until_listening(app: &TestApp, token: &str, chat_id: &str, ws: &mut WsClient) {
    for i in 0..50 {
        send(app, token, chat_id, &format!("warm-up {i}")).await;
        if tokio::time::timeout(Duration::from_millis(200), next_message(ws))
            .await
            .is_ok()
        {
            return;
        }
    }
    panic!("the subscription never received anything");
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {:?}", response.headers()))
}

/// Everything a valid token meets while the database is unreachable: try again, never "who are
/// you?".
async fn assert_try_again(app: &TestApp, token: &str, held: &mut WsClient, round: &str) {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503, "{round}: POST /graphql");
    assert!(retry_after(&response) >= 1);
    let body: Value = response.json().await.unwrap();
    let extensions = &body["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "INTERNAL", "{round}: {body}");
    assert!(
        extensions["retryAfter"].as_u64().is_some_and(|s| s >= 1),
        "{round}: {body}"
    );
    assert!(
        body.get("data").is_none(),
        "{round}: not run at all: {body}"
    );

    let upload = post_parts(
        app,
        token,
        "/api/upload",
        &[file_part("a.png", "image/png", png(100))],
    )
    .await;
    assert_eq!(upload.status(), 503, "{round}: POST /api/upload");
    assert!(retry_after(&upload) >= 1);
    let body: Value = upload.json().await.unwrap();
    assert!(body["detail"].is_string(), "{round}: {body}");

    let health = app.health().await;
    assert_eq!(health.status(), 503, "{round}: /healthz");

    let mut modern = app.ws("/graphql/ws", "graphql-transport-ws").await;
    match modern.init(bearer(token)).await {
        WsEvent::Closed(Some(1013), _) => {}
        other => panic!("{round}: expected close 1013 (try again later), got {other:?}"),
    }
    let mut legacy = app.ws("/graphql/ws", "graphql-ws").await;
    match legacy.init(bearer(token)).await {
        WsEvent::Json(message) => assert_eq!(message["type"], "connection_error", "{message}"),
        other => panic!("{round}: expected connection_error, got {other:?}"),
    }
    assert!(
        matches!(legacy.next().await, WsEvent::Closed(Some(1013), _)),
        "{round}: legacy close"
    );

    // The held socket cannot start a subscription now (its session cannot be checked), and is
    // told to retry rather than that its token is bad; the socket itself stays open.
    let id = format!("during {round}");
    held.send(json!({ "id": id, "type": "subscribe", "payload": { "query": "subscription { myEvents { __typename } }" } })).await;
    let refused = held.next_json().await;
    assert_eq!(refused["id"], id.as_str(), "{round}: {refused}");
    let extensions = &refused["payload"]["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "INTERNAL", "{round}: {refused}");
    assert!(extensions["retryAfter"].is_u64(), "{round}: {refused}");
    let complete = held.next_json().await;
    assert_eq!(complete["type"], "complete", "{round}: {complete}");
}

#[tokio::test]
async fn a_database_outage_answers_try_again_and_service_resumes() {
    let Some((config, proxy, _dir)) = behind_proxy().await else {
        return;
    };
    let app = spawn_with_config(config).await;
    let ana = app.register("ana").await;
    let bob = app.register("bob").await;
    let chat = create_group(&app, &ana.token, "outage", &["bob"]).await;
    let mut held = subscribe_chat(&app, &ana.token, &chat).await;
    until_listening(&app, &bob.token, &chat, &mut held).await;

    for (mode, round) in [(Mode::Refuse, "refused"), (Mode::Silent, "silent")] {
        // A token this instance never verified cannot be checked during the outage; one it
        // verified before is known (domain/session_cache.rs) and only its operations fail.
        let unverified = app.login_token("ana").await;
        proxy.cut(mode);
        assert_try_again(&app, &unverified, &mut held, round).await;
        let known = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
        let extensions = &known["errors"][0]["extensions"];
        assert_eq!(extensions["code"], "INTERNAL", "{round}: {known}");
        assert!(extensions["retryAfter"].is_u64(), "{round}: {known}");
        assert!(known["data"]["me"].is_null(), "{round}: {known}");
        proxy.restore();

        let me = app
            .gql_ok(Some(&ana.token), "{ me { username } }", json!({}))
            .await;
        assert_eq!(me["me"]["username"], "ana", "{round}: the same token works");
        let mut fresh = app.ws("/graphql/ws", "graphql-transport-ws").await;
        let ack = fresh.init(bearer(&ana.token)).await;
        assert!(
            matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"),
            "{round}: {ack:?}"
        );
        let after = format!("after {round}");
        send(&app, &bob.token, &chat, &after).await;
        receive(&mut held, &after).await; // the held socket still receives
    }
}

#[tokio::test]
async fn an_instance_started_during_an_outage_waits_for_the_database() {
    let Some((config, proxy, _dir)) = behind_proxy().await else {
        return;
    };
    proxy.cut(Mode::Refuse);

    // With a bound, it gives up.
    let mut bounded = config.clone();
    bounded.db_startup_wait_seconds = Some(1);
    let result = tokio::time::timeout(Duration::from_secs(20), Application::build(bounded))
        .await
        .expect("a bounded wait ends");
    assert!(result.is_err(), "no database, no server");

    // By default it keeps trying, and comes up once the database is back.
    let before = proxy.turned_away();
    let starting = tokio::spawn(spawn_with_config(config));
    proxy.wait_turned_away(before + 3).await;
    assert!(!starting.is_finished(), "still waiting for the database");
    proxy.restore();
    let app = tokio::time::timeout(Duration::from_secs(30), starting)
        .await
        .expect("up soon after the database is back")
        .expect("starts");
    let user = app.register("late").await;
    let me = app
        .gql_ok(Some(&user.token), "{ me { username } }", json!({}))
        .await;
    assert_eq!(me["me"]["username"], "late");
}
