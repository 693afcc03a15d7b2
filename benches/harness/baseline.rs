//! The raw WebSocket limit: a minimal tokio-tungstenite server (run as a child process of the
//! harness, `--baseline-server <port>`) that speaks just enough graphql-transport-ws for the
//! same clients: it acks `connection_init`, remembers `subscribe`, and on a `publish` frame
//! serializes one `next` payload shaped like goftgu's `chatEvents` delivery and writes it to
//! every subscribed socket. Same 4 KiB read buffer as goftgu.
//!
//! The raw HTTP limit (`--baseline-http <port>`): a minimal hyper HTTP/1.1 server that reads each
//! POST body whole and answers the JSON goftgu answers to `{ me { id } }`, with no parsing, no
//! authentication and no database: what a request/response round trip costs on this machine.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::broadcast};
use tokio_tungstenite::tungstenite::{
    Message, Utf8Bytes,
    handshake::server::{Request, Response},
    protocol::WebSocketConfig,
};

use crate::system;

/// Runs the baseline server until killed.
pub fn serve(port: u16) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let (tx, _) = broadcast::channel::<Utf8Bytes>(256);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true).ok();
            let tx = tx.clone();
            // A failed connection shows up at the client; the readiness probe's is expected.
            tokio::spawn(connection(stream, tx));
        }
    })
}

// The handshake callback's error type is tungstenite's (a whole HTTP response).
#[allow(clippy::result_large_err)]
async fn connection(
    stream: tokio::net::TcpStream,
    tx: broadcast::Sender<Utf8Bytes>,
) -> anyhow::Result<()> {
    let protocol = |_: &Request, mut response: Response| {
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        Ok(response)
    };
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let mut ws =
        tokio_tungstenite::accept_hdr_async_with_config(stream, protocol, Some(config)).await?;
    let mut deliveries: Option<broadcast::Receiver<Utf8Bytes>> = None;
    loop {
        tokio::select! {
            frame = ws.next() => {
                let Some(frame) = frame else { return Ok(()) };
                let Message::Text(text) = frame? else { continue };
                let value: Value = serde_json::from_str(&text)?;
                match value["type"].as_str() {
                    Some("connection_init") => {
                        ws.send(Message::Text(r#"{"type":"connection_ack"}"#.into())).await?;
                    }
                    Some("subscribe") => deliveries = Some(tx.subscribe()),
                    Some("publish") => {
                        let content = value["content"].as_str().unwrap_or_default();
                        tx.send(payload(content).into()).ok();
                    }
                    _ => {}
                }
            }
            delivery = recv(&mut deliveries) => {
                ws.send(Message::Text(delivery)).await?;
            }
        }
    }
}

async fn recv(deliveries: &mut Option<broadcast::Receiver<Utf8Bytes>>) -> Utf8Bytes {
    loop {
        match deliveries {
            Some(rx) => match rx.recv().await {
                Ok(frame) => return frame,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }
}

/// The frame goftgu sends for a new message with the subscription the harness uses.
fn payload(content: &str) -> String {
    json!({ "id": "1", "type": "next", "payload": { "data": { "chatEvents": {
        "__typename": "MessageCreated",
        "message": {
            "id": uuid::Uuid::now_v7(),
            "content": content,
            "createdAt": chrono::Utc::now(),
            "sender": { "id": uuid::Uuid::now_v7(), "username": "sender" },
        },
    }}}})
    .to_string()
}

/// Runs the bare HTTP server until killed.
pub fn serve_http(port: u16) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    use hyper::{Response as HttpResponse, body::Bytes, service::service_fn};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let answer =
            Bytes::from(json!({ "data": { "me": { "id": uuid::Uuid::now_v7() } } }).to_string());
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true).ok();
            let answer = answer.clone();
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let answer = answer.clone();
                async move {
                    // Read the body whole, as any server that parses it must.
                    request.into_body().collect().await?;
                    HttpResponse::builder()
                        .header("content-type", "application/json")
                        .body(Full::new(answer))
                        .map_err(anyhow::Error::from)
                }
            });
            tokio::spawn(async move {
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await
                    .ok();
            });
        }
    })
}

/// The baseline server as a child process on the server cores.
pub struct BaselineServer {
    child: Child,
    pub port: u16,
}

impl BaselineServer {
    /// The WebSocket broadcast server.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_as("--baseline-server").await
    }

    /// The bare HTTP server.
    pub async fn start_http() -> anyhow::Result<Self> {
        Self::start_as("--baseline-http").await
    }

    async fn start_as(flag: &str) -> anyhow::Result<Self> {
        let port = crate::server::free_port()?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .args([flag, &port.to_string()])
            .stdout(Stdio::null());
        system::pin_child_to_server_cores(&mut command);
        let child = command.spawn().context("start baseline server")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            anyhow::ensure!(Instant::now() < deadline, "baseline server did not listen");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(BaselineServer { child, port })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/", self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/graphql", self.port)
    }
}

impl Drop for BaselineServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
