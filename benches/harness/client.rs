//! The load generator's clients: GraphQL over HTTP (reqwest) and graphql-transport-ws over
//! tokio-tungstenite, plus the listener that timestamps every delivery. Written against the
//! public API only.
use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{net::TcpSocket, sync::watch};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, client::IntoClientRequest, protocol::WebSocketConfig},
};
use uuid::Uuid;

pub type Ws = WebSocketStream<tokio::net::TcpStream>;

/// Nanoseconds since the run started (one clock for senders and receivers: same process).
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Message content that carries its send time: `bench:<phase>:<ns>`, padded to a chat-like size.
pub fn stamped(phase: char) -> String {
    format!("bench:{phase}:{}:{}", now_ns(), "x".repeat(40))
}

/// The phase and send time in a delivered frame, found without parsing the whole JSON.
pub fn stamp_of(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.find("bench:")? + 6..];
    let mut chars = rest.chars();
    let phase = chars.next()?;
    let digits = rest.get(2..)?;
    let end = digits.find(|c: char| !c.is_ascii_digit())?;
    Some((phase, digits[..end].parse().ok()?))
}

/// A user the harness registered.
#[derive(Clone, Debug)]
pub struct User {
    pub id: Uuid,
    pub token: String,
}

/// GraphQL over HTTP.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    pub fn new(url: String) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .expect("http client");
        Api { http, url }
    }

    /// Runs one operation; GraphQL errors become an error carrying the first message.
    pub async fn call(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(&self.url)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request.send().await?.json().await?;
        if let Some(errors) = body.get("errors") {
            bail!("graphql error: {errors}");
        }
        Ok(body["data"].clone())
    }

    pub async fn register(&self, username: &str) -> anyhow::Result<User> {
        let data = self
            .call(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }",
                json!({ "input": {
                    "username": username,
                    "email": format!("{username}@bench.example"),
                    "password": "bench password 1234",
                    "fullName": username,
                }}),
            )
            .await?;
        Ok(User {
            id: uuid(&data["register"]["user"]["id"])?,
            token: data["register"]["accessToken"]
                .as_str()
                .context("token")?
                .to_string(),
        })
    }

    /// A group owned by `owner` with `members` (usernames or ids).
    pub async fn create_group(
        &self,
        owner: &User,
        name: &str,
        members: &[Uuid],
    ) -> anyhow::Result<Uuid> {
        let members: Vec<String> = members.iter().map(Uuid::to_string).collect();
        let data = self
            .call(
                Some(&owner.token),
                "mutation($input: CreateGroupInput!) { createGroup(input: $input) { id } }",
                json!({ "input": { "name": name, "members": members } }),
            )
            .await?;
        uuid(&data["createGroup"]["id"])
    }

    /// A public room owned by `owner` that every one of `joiners` joins.
    pub async fn room_with(&self, owner: &User, joiners: &[User]) -> anyhow::Result<Uuid> {
        let data = self
            .call(
                Some(&owner.token),
                "mutation { createRoom(input: { name: \"bench room\" }) { id } }",
                json!({}),
            )
            .await?;
        let room = uuid(&data["createRoom"]["id"])?;
        for user in joiners {
            self.call(
                Some(&user.token),
                "mutation($id: ID!) { joinRoom(roomId: $id) { id } }",
                json!({ "id": room }),
            )
            .await?;
        }
        Ok(room)
    }

    pub async fn send(&self, sender: &User, chat: Uuid, content: &str) -> anyhow::Result<()> {
        self.call(
            Some(&sender.token),
            "mutation($input: SendMessageInput!) { sendMessage(input: $input) { id } }",
            json!({ "input": { "chatId": chat, "content": content } }),
        )
        .await
        .map(drop)
    }
}

fn uuid(value: &Value) -> anyhow::Result<Uuid> {
    Ok(value.as_str().context("id")?.parse()?)
}

/// What subscribers select from `chatEvents`: a message with its sender, as a chat screen does.
pub const CHAT_EVENTS: &str = "subscription($chat: ID!) { chatEvents(chatId: $chat) { __typename ... on MessageCreated { message { id content createdAt sender { id username } } } } }";

/// Opens a graphql-transport-ws socket from `source` (a 127.0.0.x address), 4 KiB read buffer.
pub async fn connect(url: &str, source: IpAddr) -> anyhow::Result<Ws> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse()?);
    let host = request.uri().host().context("host")?.parse::<IpAddr>()?;
    let port = request.uri().port_u16().context("port")?;
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(SocketAddr::new(host, port)).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await?;
    Ok(ws)
}

/// `connection_init` with the token, then waits for `connection_ack`.
pub async fn init(ws: &mut Ws, token: &str) -> anyhow::Result<()> {
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into())).await?;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            let value: Value = serde_json::from_str(&text)?;
            match value["type"].as_str() {
                Some("connection_ack") => return Ok(()),
                Some("ping") => {}
                _ => bail!("expected connection_ack, got {text}"),
            }
        }
    }
    bail!("socket closed before connection_ack")
}

/// The `chatEvents` selection of scenario 2b's subscriber `i`: the message as `CHAT_EVENTS`
/// has it plus its reactions with `reactedByMe` (which depends on who asks), in a document of
/// its own (the operation's name), so no two subscribers share a rendering.
pub fn per_viewer_events(i: usize) -> String {
    format!(
        "subscription Reader{i}($chat: ID!) {{ chatEvents(chatId: $chat) {{ __typename ... on MessageCreated {{ message {{ id content createdAt sender {{ id username }} reactions {{ emoji count reactedByMe }} }} }} }} }}"
    )
}

/// Starts the `chatEvents` subscription (id "1") with `query`.
pub async fn subscribe_with(ws: &mut Ws, chat: Uuid, query: &str) -> anyhow::Result<()> {
    let subscribe = json!({ "id": "1", "type": "subscribe",
        "payload": { "query": query, "variables": { "chat": chat } } });
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    Ok(())
}

/// Counters the listeners share: subscribers that saw a warm-up message, measured deliveries,
/// and the time of the latest one.
#[derive(Default)]
pub struct Tally {
    pub live: AtomicU64,
    pub delivered: AtomicU64,
    pub last_ns: AtomicU64,
}

/// Reads deliveries until `stop`; returns the send-to-receive latencies (µs) of measured ones.
pub async fn listen(
    mut ws: Ws,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<Vec<u32>> {
    let mut latencies = Vec::new();
    let mut live = false;
    loop {
        let message = tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => bail!("server closed the socket: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(err)) => return Err(err.into()),
            None => bail!("socket ended"),
        };
        let Some((phase, sent)) = stamp_of(&text) else {
            if text.contains("\"error\"") || text.contains("\"errors\"") {
                bail!("subscription failed: {text}");
            }
            continue;
        };
        let now = now_ns();
        if !live {
            live = true;
            tally.live.fetch_add(1, Ordering::Relaxed);
        }
        if phase == 'm' {
            latencies.push(((now.saturating_sub(sent)) / 1000) as u32);
            tally.delivered.fetch_add(1, Ordering::Relaxed);
            tally.last_ns.fetch_max(now, Ordering::Relaxed);
        }
    }
    ws.close(None).await.ok();
    Ok(latencies)
}
