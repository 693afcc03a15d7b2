//! Test fixtures: `spawn_app()` with a fresh database, GraphQL over HTTP, WebSocket clients for
//! both protocols, and registered users. Logs stay silent unless TEST_LOG=1.
use std::{sync::Once, time::Duration};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use goftgu::{AppState, Application, Config};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest},
};

pub const PASSWORD: &str = "correct horse battery";

static TRACING: Once = Once::new();

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub state: AppState,
    pub jwt_secret: String,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<()>>,
}

/// A registered user.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub token: String,
}

/// A base configuration: port 0, the given data directory, a fresh database.
pub async fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Config::parse_from(["goftgu"]);
    config.host = "127.0.0.1".parse().unwrap();
    config.port = 0;
    config.data_dir = data_dir.to_path_buf();
    config.database_url = Some(fresh_database_url(data_dir).await);
    config.redis_url = std::env::var("TEST_REDIS_URL").ok();
    config.redis_prefix = format!("goftgu-test-{}:", uuid::Uuid::new_v4().simple());
    config.jwt_secret = Some(format!("test-secret-{}", uuid::Uuid::new_v4()));
    // Every test registers its cast from 127.0.0.1, often more than the 10 an address may sign
    // up at once; the per-user limits stay at their defaults (tests/api/rate_limits.rs sets its
    // own).
    config.limits.register_per_minute = 1000;
    config.limits.register_burst = 1000;
    config
}

/// SQLite file in the test's directory, or a new PostgreSQL database when TEST_DATABASE_URL is set.
pub async fn fresh_database_url(data_dir: &std::path::Path) -> String {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(admin_url) => {
            let name = format!("goftgu_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url)
                .await
                .expect("TEST_DATABASE_URL unreachable");
            admin
                .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .expect("create test database");
            admin.close().await.ok();
            with_database_name(&admin_url, &name)
        }
        Err(_) => format!("sqlite://{}?mode=rwc", data_dir.join("test.db").display()),
    }
}

fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

/// Starts the app with a fresh database in a temporary directory.
pub async fn spawn_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path()).await;
    (spawn_with_config(config).await, dir)
}

/// Starts the app with a fresh database and the test configuration changed by `change`.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    change(&mut config);
    (spawn_with_config(config).await, dir)
}

/// Starts the app with a prepared configuration.
pub async fn spawn_with_config(config: Config) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            goftgu::telemetry::init(goftgu::config::LogFormat::Text);
        }
    });
    let jwt_secret = config.jwt_secret.clone().unwrap_or_default();
    let app = Application::build(config).await.expect("app builds");
    serve_built(app, jwt_secret)
}

/// Serves an application already built (tests that build several at once).
pub fn serve_built(app: Application, jwt_secret: String) -> TestApp {
    let port = app.port();
    let state = app.state().clone();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        app.run_until(async {
            rx.await.ok();
        })
        .await
        .expect("server runs");
    });
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        state,
        jwt_secret,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

impl TestApp {
    /// Graceful shutdown; waits until the server has stopped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("server stops within 10 s")
                .expect("server task ends cleanly");
        }
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> reqwest::Response {
        self.client
            .get(format!("{}/healthz", self.address))
            .send()
            .await
            .expect("health request sent")
    }

    /// POSTs a GraphQL operation and returns the whole JSON response.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request sent");
        assert!(
            response.status().is_success(),
            "status {}",
            response.status()
        );
        response.json().await.expect("JSON response")
    }

    /// Like `gql`, but panics on errors and returns `data`.
    pub async fn gql_ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let response = self.gql(token, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response}"
        );
        response["data"].clone()
    }

    /// Registers `username` with the standard password.
    pub async fn register(&self, username: &str) -> TestUser {
        let email = format!("{username}@example.com");
        let data = self
            .gql_ok(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }",
                json!({ "input": { "username": username, "email": email, "password": PASSWORD } }),
            )
            .await;
        TestUser {
            id: data["register"]["user"]["id"].as_str().unwrap().to_string(),
            username: username.to_string(),
            email,
            token: data["register"]["accessToken"]
                .as_str()
                .unwrap()
                .to_string(),
        }
    }

    /// Logs in and returns a new token.
    pub async fn login(&self, login: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($input: LoginInput!) { login(input: $input) { accessToken user { id username } } }",
            json!({ "input": { "login": login, "password": password } }),
        )
        .await
    }

    /// Logs in with the standard password and returns the new access token.
    pub async fn login_token(&self, login: &str) -> String {
        let response = self.login(login, PASSWORD).await;
        response["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("login {login}: {response}"))
            .to_owned()
    }

    /// Opens a WebSocket to `path` offering `protocol`.
    pub async fn ws(&self, path: &str, protocol: &str) -> WsClient {
        let mut request = format!("ws://127.0.0.1:{}{path}", self.port)
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("ws connects");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol)
        );
        WsClient { stream }
    }
}

/// The first error's `extensions.code`.
pub fn error_code(response: &Value) -> &str {
    response["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {response}"))
}

/// The first error's `extensions.field`.
pub fn error_field(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["field"].as_str()
}

/// The first error's message.
pub fn error_message(response: &Value) -> &str {
    response["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
}

/// A raw WebSocket client speaking JSON messages.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server did next on a socket.
#[derive(Debug)]
pub enum WsEvent {
    Json(Value),
    Closed(Option<u16>, String),
}

impl WsClient {
    pub async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::Text(message.to_string().into()))
            .await
            .expect("ws send");
    }

    /// The next text message or the close, within five seconds.
    pub async fn next(&mut self) -> WsEvent {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.stream.next())
                .await
                .expect("server answered within 5 s");
            match message {
                Some(Ok(Message::Text(text))) => {
                    return WsEvent::Json(
                        serde_json::from_str(text.as_str()).expect("JSON message"),
                    );
                }
                Some(Ok(Message::Close(frame))) => {
                    return WsEvent::Closed(
                        frame.as_ref().map(|f| u16::from(f.code)),
                        frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    );
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return WsEvent::Closed(None, String::new()),
            }
        }
    }

    /// The next JSON message; panics on a close.
    pub async fn next_json(&mut self) -> Value {
        match self.next().await {
            WsEvent::Json(value) => value,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// Sends `connection_init` with `payload` and returns the server's answer.
    pub async fn init(&mut self, payload: Value) -> WsEvent {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        self.next().await
    }
}
