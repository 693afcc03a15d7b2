//! Web Push end to end: a push service started by the test (an HTTP server on 127.0.0.1, exempt
//! through `GOFTGU_PUSH_ALLOW_HTTP_HOSTS`) receives each push, checks the VAPID token against the
//! key in its `Authorization` (ES256 signature, `aud` the endpoint's origin, `exp` within 24 h,
//! `sub`), decrypts the `aes128gcm` body with the browser's private key and auth secret (made by
//! the test, as a browser makes them) and answers as each test tells it. A 410 removes the
//! subscription, a 5xx or 429 is retried until the last attempt, a user with a live socket is
//! not pushed, and bad registrations are refused naming the field.
use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::fixtures::{assert_bad_input, strings};
use crate::helpers::{
    TestApp, TestUser, error_code, spawn_app_with, spawn_with_config, test_config,
};
use crate::live::{MODERN, Socket};
use crate::people::asked;

const SUBJECT: &str = "mailto:push-test@example.org";

const REGISTER: &str = "mutation($endpoint: String!, $p256dh: String!, $auth: String!) {
    registerPushSubscription(endpoint: $endpoint, p256dh: $p256dh, auth: $auth) {
      id endpoint registeredAt } }";

/// The browser's half of a subscription: its key pair and authentication secret.
#[derive(Clone)]
struct Browser {
    secret: p256::SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Self {
        let secret = loop {
            if let Ok(key) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        Self {
            secret,
            auth: rand::random(),
        }
    }

    /// `keys.p256dh` of `PushSubscription.toJSON()`.
    fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret.public_key().to_encoded_point(false).as_bytes())
    }

    /// `keys.auth`.
    fn auth(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }
}

/// A push as the service received and checked it.
#[derive(Debug)]
struct Pushed {
    /// The subscription's name (the endpoint's last path segment).
    name: String,
    /// What the service answered.
    status: u16,
    /// The decrypted JSON, or why the request was not a valid push.
    payload: Result<Value, String>,
    /// The `k` of the `Authorization` header: the server's VAPID public key.
    key: String,
}

struct Service {
    origin: String,
    browsers: Mutex<HashMap<String, Browser>>,
    /// Status codes to answer per subscription, in order; 201 once used up.
    answers: Mutex<HashMap<String, VecDeque<u16>>>,
    received: mpsc::UnboundedSender<Pushed>,
}

/// The push service and what it received, in order.
struct PushService {
    service: Arc<Service>,
    received: mpsc::UnboundedReceiver<Pushed>,
    counts: HashMap<String, usize>,
}

impl PushService {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let service = Arc::new(Service {
            origin: format!("http://{}", listener.local_addr().unwrap()),
            browsers: Mutex::default(),
            answers: Mutex::default(),
            received: tx,
        });
        let router = Router::new()
            .route("/push/{name}", post(receive))
            .with_state(service.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self {
            service,
            received: rx,
            counts: HashMap::new(),
        }
    }

    fn endpoint(&self, name: &str) -> String {
        format!("{}/push/{name}", self.service.origin)
    }

    /// A new browser subscribed as `name`, its push service answering `answers` first.
    fn browser(&self, name: &str, answers: &[u16]) -> Browser {
        let browser = Browser::new();
        self.service
            .browsers
            .lock()
            .unwrap()
            .insert(name.into(), browser.clone());
        self.service
            .answers
            .lock()
            .unwrap()
            .insert(name.into(), answers.iter().copied().collect());
        browser
    }

    /// The next push received (waiting at most 10 s).
    async fn next(&mut self) -> Pushed {
        let pushed = tokio::time::timeout(Duration::from_secs(10), self.received.recv())
            .await
            .expect("a push arrives within 10 s")
            .expect("the service runs");
        *self.counts.entry(pushed.name.clone()).or_default() += 1;
        pushed
    }

    /// Pushes received for `name` so far (those already taken by `next`, and the rest).
    fn count(&mut self, name: &str) -> usize {
        while let Ok(pushed) = self.received.try_recv() {
            *self.counts.entry(pushed.name.clone()).or_default() += 1;
        }
        self.counts.get(name).copied().unwrap_or(0)
    }
}

async fn receive(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let browser = service.browsers.lock().unwrap().get(&name).cloned();
    let status = service
        .answers
        .lock()
        .unwrap()
        .get_mut(&name)
        .and_then(|answers| answers.pop_front())
        .unwrap_or(201);
    let (key, payload) = match browser {
        Some(browser) => check(&service.origin, &headers, &body, &browser),
        None => (String::new(), Err(format!("no browser named {name}"))),
    };
    let status = if payload.is_ok() { status } else { 400 };
    service
        .received
        .send(Pushed {
            name,
            status,
            payload,
            key,
        })
        .ok();
    StatusCode::from_u16(status).unwrap()
}

/// What a push service checks (RFC 8030, 8291, 8292): the VAPID key and decrypted payload.
fn check(
    origin: &str,
    headers: &HeaderMap,
    body: &[u8],
    browser: &Browser,
) -> (String, Result<Value, String>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let authorization = header("authorization");
    let Some(rest) = authorization.strip_prefix("vapid ") else {
        return (
            String::new(),
            Err(format!("no vapid scheme: {authorization:?}")),
        );
    };
    let mut token = "";
    let mut key = "";
    for part in rest.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => token = value,
            Some(("k", value)) => key = value,
            _ => {}
        }
    }
    let key = key.to_string();
    let verified = (|| {
        if header("content-encoding") != "aes128gcm" {
            return Err(format!("content-encoding {}", header("content-encoding")));
        }
        let ttl: u64 = header("ttl").parse().map_err(|_| "no TTL".to_string())?;
        if ttl == 0 {
            return Err("TTL 0".into());
        }
        let point = URL_SAFE_NO_PAD.decode(&key).map_err(|e| e.to_string())?;
        if point.len() != 65 || point[0] != 4 {
            return Err("k is not an uncompressed P-256 point".into());
        }
        let decoding = jsonwebtoken::DecodingKey::from_ec_components(
            &URL_SAFE_NO_PAD.encode(&point[1..33]),
            &URL_SAFE_NO_PAD.encode(&point[33..65]),
        )
        .map_err(|e| e.to_string())?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[origin]);
        validation.set_required_spec_claims(&["exp", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<Value>(token, &decoding, &validation)
            .map_err(|e| format!("VAPID token: {e}"))?
            .claims;
        if claims["sub"] != SUBJECT {
            return Err(format!("sub {}", claims["sub"]));
        }
        let exp = claims["exp"].as_i64().unwrap_or_default();
        if exp > chrono::Utc::now().timestamp() + 24 * 3600 {
            return Err("exp more than 24 h ahead".into());
        }
        let auth = web_push_native::Auth::from(browser.auth);
        let plain = web_push_native::decrypt(body.to_vec(), &browser.secret, &auth)
            .map_err(|e| format!("decrypt: {e}"))?;
        serde_json::from_slice(&plain).map_err(|e| e.to_string())
    })();
    (key, verified)
}

/// The app with the push service's host exempt and quick ticks and retries.
async fn spawn(max_attempts: i32) -> (TestApp, tempfile::TempDir) {
    spawn_app_with(|config| {
        config.push.allow_http_hosts = vec!["127.0.0.1".into()];
        config.push.vapid_subject = SUBJECT.into();
        config.push.tick_ms = 20;
        config.push.retry_base_ms = 20;
        config.push.max_attempts = max_attempts;
    })
    .await
}

async fn register(app: &TestApp, token: &str, endpoint: &str, browser: &Browser) -> Value {
    app.gql(
        Some(token),
        REGISTER,
        json!({ "endpoint": endpoint, "p256dh": browser.p256dh(), "auth": browser.auth() }),
    )
    .await
}

/// `user` subscribes a new browser named `name` at the push service.
async fn subscribe(
    app: &TestApp,
    service: &PushService,
    user: &TestUser,
    name: &str,
    answers: &[u16],
) {
    let browser = service.browser(name, answers);
    let answer = register(app, &user.token, &service.endpoint(name), &browser).await;
    assert!(answer.get("errors").is_none(), "{answer}");
}

async fn endpoints(app: &TestApp, token: &str) -> Vec<String> {
    let data = app
        .gql_ok(Some(token), "{ pushSubscriptions { endpoint } }", json!({}))
        .await;
    strings(&data["pushSubscriptions"], "endpoint")
}

/// Pushes not yet sent nor given up.
async fn pending(app: &TestApp) -> i64 {
    let db = &app.state.db;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM push_deliveries",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// How many pushes ended with `outcome`, as `/metrics` tells.
async fn outcomes(app: &TestApp, outcome: &str) -> f64 {
    let body = crate::metrics::scrape(app).await;
    crate::metrics::sample(
        &body,
        &format!("goftgu_web_pushes_total{{outcome=\"{outcome}\"}}"),
    )
}

/// Waits (at most 10 s) until nothing is left to push.
async fn settled(app: &TestApp) {
    for _ in 0..500 {
        if pending(app).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("pushes still pending after 10 s");
}

#[tokio::test]
async fn a_notification_is_pushed_signed_and_encrypted_for_the_browser() {
    let (app, dir) = spawn(3).await;
    let mut service = PushService::start().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    subscribe(&app, &service, &ben, "ben", &[]).await;

    asked(&app, &ana.token, "ben").await;
    let pushed = service.next().await;
    assert_eq!(pushed.name, "ben");
    assert_eq!(pushed.status, 201);
    let payload = pushed.payload.expect("a valid push");

    let listed = app
        .gql_ok(
            Some(&ben.token),
            "{ notifications(first: 5) { nodes { id kind createdAt } } vapidPublicKey }",
            json!({}),
        )
        .await;
    let notification = &listed["notifications"]["nodes"][0];
    assert_eq!(payload["id"], notification["id"], "{payload}");
    assert_eq!(payload["kind"], "FRIEND_REQUEST");
    assert_eq!(payload["actorId"], ana.id.as_str());
    assert_eq!(payload["chatId"], Value::Null);
    // At the precision every backend keeps (SQLite keeps nanoseconds, PostgreSQL microseconds).
    let created = |v: &Value| {
        use chrono::SubsecRound;
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .trunc_subsecs(6)
    };
    assert_eq!(
        created(&payload["createdAt"]),
        created(&notification["createdAt"])
    );
    // Signed with the key browsers subscribe with, generated once and kept in the data directory.
    assert_eq!(pushed.key, listed["vapidPublicKey"].as_str().unwrap());
    assert!(dir.path().join("vapid_private_key").exists());
    settled(&app).await;
    assert_eq!(service.count("ben"), 1, "sent once");
    assert_eq!(outcomes(&app, "sent").await, 1.0);
}

#[tokio::test]
async fn a_subscription_the_push_service_calls_gone_is_removed() {
    let (app, _dir) = spawn(3).await;
    let mut service = PushService::start().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    subscribe(&app, &service, &ben, "old", &[410]).await;
    subscribe(&app, &service, &ben, "new", &[]).await;

    asked(&app, &ana.token, "ben").await;
    settled(&app).await;
    assert_eq!(endpoints(&app, &ben.token).await, [service.endpoint("new")]);
    assert_eq!((service.count("old"), service.count("new")), (1, 1));
    assert_eq!(outcomes(&app, "gone").await, 1.0);

    // The next notification goes only to the subscription left.
    let cyd = app.register("cyd").await;
    asked(&app, &cyd.token, "ben").await;
    settled(&app).await;
    assert_eq!((service.count("old"), service.count("new")), (1, 2));
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retried_then_given_up() {
    let (app, _dir) = spawn(4).await;
    let mut service = PushService::start().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    subscribe(&app, &service, &ben, "ben", &[503, 429, 500]).await;
    subscribe(&app, &service, &cyd, "cyd", &[500, 502, 503, 504, 500]).await;

    asked(&app, &ana.token, "ben").await;
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    while statuses.last() != Some(&201) {
        let pushed = service.next().await;
        if pushed.name == "ben" {
            statuses.push(pushed.status);
            ids.push(pushed.payload.expect("a valid push")["id"].clone());
        }
    }
    assert_eq!(statuses, [503, 429, 500, 201]);
    assert!(ids.iter().all(|id| id == &ids[0]), "the same push: {ids:?}");

    // Four attempts, all failing: given up, the subscription kept.
    asked(&app, &ana.token, "cyd").await;
    settled(&app).await;
    assert_eq!(service.count("cyd"), 4);
    assert_eq!(service.count("ben"), 4);
    assert_eq!(endpoints(&app, &cyd.token).await, [service.endpoint("cyd")]);
    assert_eq!(outcomes(&app, "retried").await, 6.0);
    assert_eq!(outcomes(&app, "given_up").await, 1.0);
    assert_eq!(outcomes(&app, "sent").await, 1.0);
}

#[tokio::test]
async fn a_user_with_a_live_socket_is_not_pushed() {
    let (app, _dir) = spawn(3).await;
    let mut service = PushService::start().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    subscribe(&app, &service, &ben, "ben", &[]).await;
    subscribe(&app, &service, &cyd, "cyd", &[]).await;
    let ben_id: Uuid = ben.id.parse().unwrap();

    let socket = Socket::open(&app, &ben.token, MODERN).await;
    assert!(app.state.presence.online(&[ben_id]).await.contains(&ben_id));
    asked(&app, &ana.token, "ben").await;
    asked(&app, &ana.token, "cyd").await;
    settled(&app).await;
    assert_eq!(service.count("cyd"), 1, "the offline user is pushed");
    assert_eq!(service.count("ben"), 0, "the online user is not");
    let unread = app
        .gql_ok(Some(&ben.token), "{ unreadNotificationCount }", json!({}))
        .await;
    assert_eq!(unread["unreadNotificationCount"], 1, "yet notified");
    assert_eq!(outcomes(&app, "online").await, 1.0);

    // Offline again: the next notification is pushed.
    drop(socket);
    for _ in 0..500 {
        if app.state.presence.online(&[ben_id]).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dan = app.register("dan").await;
    asked(&app, &dan.token, "ben").await;
    let pushed = service.next().await;
    assert_eq!(pushed.name, "ben");
    assert_eq!(pushed.payload.unwrap()["actorId"], dan.id.as_str());
}

#[tokio::test]
async fn registrations_are_checked_renewed_moved_capped_and_removed() {
    let (app, _dir) = spawn(3).await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let browser = Browser::new();
    let fine = "https://push.example.com/wpush/abc";

    let anonymous = app
        .gql(
            None,
            REGISTER,
            json!({ "endpoint": fine, "p256dh": browser.p256dh(), "auth": browser.auth() }),
        )
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    let anonymous = app.gql(None, "{ vapidPublicKey }", json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");

    let long = format!("https://push.example.com/{}", "a".repeat(1024));
    for endpoint in [
        "not a url",
        "/relative/path",
        "ftp://push.example.com/x",
        "http://push.example.com/x",
        "https://10.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://localhost/x",
        "https://user:secret@push.example.com/x",
        &long,
    ] {
        let answer = register(&app, &ben.token, endpoint, &browser).await;
        assert_bad_input(&answer, Some("endpoint"));
    }
    let point = browser.secret.public_key();
    let compressed = URL_SAFE_NO_PAD.encode(point.to_encoded_point(true).as_bytes());
    let mut off_curve = point.to_encoded_point(false).as_bytes().to_vec();
    off_curve[64] ^= 1;
    for p256dh in [
        "not base64!",
        compressed.as_str(),
        &URL_SAFE_NO_PAD.encode(&off_curve),
        &URL_SAFE_NO_PAD.encode([4u8; 64]),
    ] {
        let answer = app
            .gql(
                Some(&ben.token),
                REGISTER,
                json!({ "endpoint": fine, "p256dh": p256dh, "auth": browser.auth() }),
            )
            .await;
        assert_bad_input(&answer, Some("p256dh"));
    }
    for auth in [
        "not base64!".to_string(),
        URL_SAFE_NO_PAD.encode([1u8; 15]),
        URL_SAFE_NO_PAD.encode([1u8; 17]),
    ] {
        let answer = app
            .gql(
                Some(&ben.token),
                REGISTER,
                json!({ "endpoint": fine, "p256dh": browser.p256dh(), "auth": auth }),
            )
            .await;
        assert_bad_input(&answer, Some("auth"));
    }
    assert!(endpoints(&app, &ben.token).await.is_empty(), "nothing kept");

    // Registered, registered again (renewed, still one), then taken over by whoever registers
    // it next: an endpoint is one browser's.
    let answer = register(&app, &ben.token, fine, &browser).await;
    assert_eq!(answer["data"]["registerPushSubscription"]["endpoint"], fine);
    register(&app, &ben.token, fine, &Browser::new()).await;
    assert_eq!(endpoints(&app, &ben.token).await, [fine]);
    register(&app, &cyd.token, fine, &browser).await;
    assert!(endpoints(&app, &ben.token).await.is_empty());
    assert_eq!(endpoints(&app, &cyd.token).await, [fine]);

    // Only the owner removes it.
    let unregister = "mutation($e: String!) { unregisterPushSubscription(endpoint: $e) }";
    let removed = |token: &str| {
        let token = token.to_string();
        let app = &app;
        async move {
            app.gql_ok(Some(&token), unregister, json!({ "e": fine }))
                .await["unregisterPushSubscription"]
                .clone()
        }
    };
    assert_eq!(removed(&ben.token).await, false);
    assert_eq!(removed(&cyd.token).await, true);
    assert_eq!(removed(&cyd.token).await, false);
    assert!(endpoints(&app, &cyd.token).await.is_empty());

    // At most 10 per user: the least recently registered goes.
    let many: Vec<String> = (0..11)
        .map(|i| format!("https://push.example.com/wpush/{i}"))
        .collect();
    for endpoint in &many {
        let answer = register(&app, &ben.token, endpoint, &browser).await;
        assert!(answer.get("errors").is_none(), "{answer}");
        crate::fixtures::tick().await;
    }
    let kept = endpoints(&app, &ben.token).await;
    let newest_first: Vec<String> = many.iter().rev().take(10).cloned().collect();
    assert_eq!(kept, newest_first);
}

#[tokio::test]
async fn the_vapid_key_is_generated_once_and_kept_or_given_by_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path()).await;
    let key_of = |app: TestApp, name: &'static str| async move {
        let user = app.register(name).await;
        let data = app
            .gql_ok(Some(&user.token), "{ vapidPublicKey }", json!({}))
            .await;
        app.stop().await;
        data["vapidPublicKey"].as_str().unwrap().to_string()
    };
    let first = key_of(spawn_with_config(config.clone()).await, "kim").await;
    let path = dir.path().join("vapid_private_key");
    let private = std::fs::read_to_string(&path).expect("key kept in the data directory");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let point = URL_SAFE_NO_PAD.decode(&first).unwrap();
    assert_eq!(
        (point.len(), point[0]),
        (65, 4),
        "an uncompressed P-256 point"
    );

    // Restarted on the same directory: the same key (browsers subscribed with it).
    let again = test_config(dir.path()).await;
    assert_eq!(key_of(spawn_with_config(again).await, "lee").await, first);

    // Given by configuration (as every instance of a cluster must be): that key, not the file's.
    let other = tempfile::tempdir().unwrap();
    let mut given = test_config(other.path()).await;
    given.push.vapid_private_key = Some(private.trim().to_string());
    assert_eq!(
        key_of(spawn_with_config(given.clone()).await, "max").await,
        first
    );
    assert!(!other.path().join("vapid_private_key").exists());
    assert!(!format!("{given:?}").contains(private.trim()), "redacted");
}

#[tokio::test]
async fn across_two_instances_each_push_is_sent_once_and_presence_is_shared() {
    let Some(redis) = crate::cluster::services() else {
        return;
    };
    let key = loop {
        let bytes: [u8; 32] = rand::random();
        if p256::SecretKey::from_slice(&bytes).is_ok() {
            break URL_SAFE_NO_PAD.encode(bytes);
        }
    };
    let (a, b, _dirs) = crate::cluster::spawn_pair_with(&redis, |config| {
        config.push.allow_http_hosts = vec!["127.0.0.1".into()];
        config.push.vapid_subject = SUBJECT.into();
        config.push.tick_ms = 10;
        config.push.vapid_private_key = Some(key);
        config.limits.invites_burst = 100;
    })
    .await;
    let mut service = PushService::start().await;
    let ana = a.register("ana").await;
    let ben = a.register("ben").await;
    let cyd = b.register("cyd").await;
    subscribe(&a, &service, &ben, "ben", &[]).await;
    // Eight browsers: every notification makes eight pushes due at once, for both instances
    // to reach for.
    let browsers: Vec<String> = (0..8).map(|i| format!("cyd{i}")).collect();
    for name in &browsers {
        subscribe(&b, &service, &cyd, name, &[]).await;
    }

    // Ben is online through B only; both instances deliver, and neither pushes to him.
    let ben_id: Uuid = ben.id.parse().unwrap();
    let _socket = Socket::open(&b, &ben.token, MODERN).await;
    assert!(a.state.presence.online(&[ben_id]).await.contains(&ben_id));
    asked(&a, &ana.token, "ben").await;

    // Ten notifications for Cyd, written through both instances: each pushed to each browser
    // exactly once.
    let key = a
        .gql_ok(Some(&cyd.token), "{ vapidPublicKey }", json!({}))
        .await["vapidPublicKey"]
        .clone();
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        crate::fixtures::create_group(app, &ana.token, &format!("g{i}"), &["cyd"]).await;
    }
    let mut pairs = std::collections::HashSet::new();
    for _ in 0..80 {
        let pushed = service.next().await;
        assert_eq!(
            pushed.key, key,
            "both instances sign with the configured key"
        );
        let id = pushed.payload.expect("a valid push")["id"].clone();
        pairs.insert((pushed.name, id.to_string()));
    }
    settled(&a).await;
    assert_eq!(pairs.len(), 80, "ten notifications to eight browsers");
    let sent: usize = browsers.iter().map(|name| service.count(name)).sum();
    assert_eq!(sent, 80, "none sent twice");
    assert_eq!(service.count("ben"), 0, "online through the other instance");
}

#[tokio::test]
async fn racing_claims_never_take_the_same_push_twice() {
    // The workers idle, so only the claims below take what is due.
    let (app, _dir) = spawn_app_with(|config| {
        config.push.allow_http_hosts = vec!["127.0.0.1".into()];
        config.push.tick_ms = 3_600_000;
        config.limits.invites_burst = 100;
    })
    .await;
    let service = PushService::start().await;
    let ana = app.register("ana").await;
    let cyd = app.register("cyd").await;
    for i in 0..8 {
        subscribe(&app, &service, &cyd, &format!("cyd{i}"), &[]).await;
    }
    for i in 0..20 {
        crate::fixtures::create_group(&app, &ana.token, &format!("g{i}"), &["cyd"]).await;
    }
    assert_eq!(pending(&app).await, 160);

    // Sixteen claims at once, a batch of at most 32 each: together they take every push once.
    let claims = (0..16).map(|_| {
        let state = app.state.clone();
        tokio::spawn(async move { goftgu::domain::push::worker::claim(&state).await })
    });
    let mut claimed = Vec::new();
    for claim in futures_util::future::join_all(claims).await {
        let rows = claim.unwrap().unwrap_or_else(|e| panic!("{e:?}"));
        assert!(rows.len() <= 32);
        claimed.extend(rows.into_iter().map(|row| row.id));
    }
    let distinct: std::collections::HashSet<_> = claimed.iter().collect();
    assert_eq!(distinct.len(), claimed.len(), "a push claimed twice");
    assert_eq!(claimed.len(), 160, "every push claimed");
}

#[tokio::test]
async fn a_mention_is_pushed_with_its_message_but_never_to_someone_who_blocked_the_sender() {
    let (app, _dir) = spawn(3).await;
    let mut service = PushService::start().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = crate::fixtures::create_group(&app, &ana.token, "club", &["ben", "cyd"]).await;
    subscribe(&app, &service, &ben, "ben", &[]).await;
    subscribe(&app, &service, &cyd, "cyd", &[]).await;
    app.gql_ok(
        Some(&ben.token),
        "mutation($id: ID!) { blockUser(userId: $id) }",
        json!({ "id": ana.id }),
    )
    .await;

    let message = crate::fixtures::send(&app, &ana.token, &group, "@ben @cyd lunch?").await;
    settled(&app).await;
    let pushed = service.next().await;
    assert_eq!(pushed.name, "cyd", "ben blocked ana: only cyd is pushed");
    let payload = pushed.payload.unwrap();
    assert_eq!(payload["kind"], "MENTION", "{payload}");
    assert_eq!(payload["messageId"], message.as_str(), "{payload}");
    assert_eq!(payload["chatId"], group.as_str(), "{payload}");
    assert_eq!(service.count("ben"), 0, "ben blocked ana");
}
