//! Caps on subscription WebSockets, so no client can hold a whole instance: sockets per instance
//! (503 before the upgrade), sockets per user (closed with 1008 after authentication) and
//! operations per socket (one more is refused with the protocol's per-operation `error`,
//! `RATE_LIMITED`, and the socket stays open). Also tells an oversized message apart (1009).
use std::{
    borrow::Cow,
    collections::HashMap,
    hash::BuildHasher,
    pin::Pin,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use async_graphql::{
    futures_util::{Sink, SinkExt, Stream, future},
    http::WebSocketProtocols,
};
use axum::{
    Json,
    extract::ws::Message,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_channel::mpsc;
use serde::Deserialize;
use uuid::Uuid;

use crate::config::Config;

/// Seconds a client refused for a full instance is asked to wait.
const RETRY_AFTER_SECONDS: &str = "5";
/// Close code for a user over their socket cap: 1008 (policy violation). graphql-ws treats
/// 1xxx codes other than 1000/1001/1005/1006/1012-1014 as fatal, so it reports the close to the
/// application instead of reconnecting in a loop.
pub const TOO_MANY_SOCKETS: u16 = 1008;
/// Close code for a message over the size limit: 1009 (message too big), fatal for graphql-ws.
pub const MESSAGE_TOO_BIG: u16 = 1009;

/// Open sockets on this instance, in total and per user.
pub struct Sockets {
    open: AtomicUsize,
    per_user: Mutex<HashMap<Uuid, usize>>,
    max_open: usize,
    max_per_user: usize,
}

impl Sockets {
    pub fn new(config: &Config) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            per_user: Mutex::default(),
            max_open: config.max_sockets,
            max_per_user: config.max_sockets_per_user,
        })
    }

    /// A place for one more socket on this instance, or `None` when it is full.
    pub fn reserve(self: &Arc<Self>) -> Option<SocketSlot> {
        let before = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = SocketSlot(self.clone());
        (before < self.max_open).then_some(slot)
    }

    /// A place for one more socket of `user`, or `None` when they hold the most allowed.
    pub fn claim_for(self: &Arc<Self>, user: Uuid) -> Option<UserSlot> {
        let mut per_user = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let count = per_user.entry(user).or_default();
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(UserSlot(self.clone(), user))
    }

    /// Sockets open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    pub fn max_per_user(&self) -> usize {
        self.max_per_user
    }
}

/// One socket counted against the instance; freed on drop.
pub struct SocketSlot(Arc<Sockets>);

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One socket counted against its user; freed on drop.
pub struct UserSlot(Arc<Sockets>, Uuid);

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut per_user = self.0.per_user.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = per_user.get_mut(&self.1) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_user.remove(&self.1);
            }
        }
    }
}

/// The refusal of an upgrade when the instance holds its most sockets.
pub fn instance_full() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECONDS)],
        Json(serde_json::json!({
            "detail": "this server holds as many live connections as it may; retry later"
        })),
    )
        .into_response()
}

/// Whether a read error is a message (or frame) over the size limit.
pub fn is_too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// The operations running on one socket, by a hash of their id (client ids can be long; a
/// hash keeps the state at eight bytes per operation), and whether the socket read a message
/// over the size limit.
pub struct Operations {
    active: Mutex<Vec<u64>>,
    max: usize,
    too_big: AtomicBool,
}

static ID_HASHER: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(Default::default);

impl Operations {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            active: Mutex::default(),
            max,
            too_big: AtomicBool::new(false),
        })
    }

    pub fn read_too_big(&self) -> bool {
        self.too_big.load(Ordering::Acquire)
    }

    /// Admits a `subscribe`/`start` unless the socket already runs the most operations. A known
    /// id is admitted (async-graphql replaces the operation under that id).
    fn admit(&self, id: &str) -> bool {
        let key = ID_HASHER.hash_one(id);
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if active.contains(&key) {
            return true;
        }
        if active.len() >= self.max {
            return false;
        }
        active.push(key);
        true
    }

    /// An operation ended (async-graphql sent `complete`, also on the client's `complete`).
    fn release(&self, id: &str) {
        let key = ID_HASHER.hash_one(id);
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = active.iter().position(|k| *k == key) {
            active.swap_remove(at);
        }
    }
}

/// The `type` and `id` of a protocol message; the rest is skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
}

fn envelope(message: &Message) -> Option<Envelope<'_>> {
    let bytes: &[u8] = match message {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => return None,
    };
    serde_json::from_slice(bytes).ok()
}

/// The socket's write half as async-graphql sees it: every `complete` it sends frees the
/// operation's slot before async-graphql reads the next client message.
pub fn releasing(
    sink: mpsc::Sender<Message>,
    operations: Arc<Operations>,
) -> impl Sink<Message, Error = mpsc::SendError> {
    sink.with(move |message: Message| {
        if let Message::Text(text) = &message
            && text.as_str().starts_with(r#"{"type":"complete""#)
            && let Some(Envelope { id: Some(id), .. }) = envelope(&message)
        {
            operations.release(&id);
        }
        future::ready(Ok::<_, mpsc::SendError>(message))
    })
}

/// The socket's read half as async-graphql sees it: operations over the cap are answered here
/// (through `replies`) and never reach async-graphql; a read error ends the stream, and an
/// oversized message is noted so the socket closes with 1009.
pub struct Admitted<S> {
    inner: S,
    operations: Arc<Operations>,
    replies: mpsc::Sender<Message>,
    refusal: Option<Message>,
    protocol: WebSocketProtocols,
}

impl<S> Admitted<S> {
    pub fn new(
        inner: S,
        operations: Arc<Operations>,
        replies: mpsc::Sender<Message>,
        protocol: WebSocketProtocols,
    ) -> Self {
        Self {
            inner,
            operations,
            replies,
            refusal: None,
            protocol,
        }
    }

    /// The per-operation error each protocol defines (`payload` is a list of errors in
    /// graphql-transport-ws, one error in the legacy protocol).
    fn refusal(&self, id: &str) -> Message {
        let error = serde_json::json!({
            "message": format!(
                "too many active subscriptions on this socket (at most {}); complete one first",
                self.operations.max
            ),
            "extensions": { "code": "RATE_LIMITED" },
        });
        let payload = match self.protocol {
            WebSocketProtocols::GraphQLWS => serde_json::Value::Array(vec![error]),
            WebSocketProtocols::SubscriptionsTransportWS => error,
        };
        let message = serde_json::json!({ "type": "error", "id": id, "payload": payload });
        Message::Text(message.to_string().into())
    }
}

impl<S> Stream for Admitted<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    type Item = Result<Message, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(refusal) = this.refusal.take() {
                match this.replies.poll_ready(cx) {
                    Poll::Ready(Ok(())) => {
                        let _ = this.replies.start_send(refusal);
                    }
                    Poll::Ready(Err(_)) => return Poll::Ready(None),
                    Poll::Pending => {
                        this.refusal = Some(refusal);
                        return Poll::Pending;
                    }
                }
            }
            let message = match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(message))) => message,
                Poll::Ready(Some(Err(err))) => {
                    if is_too_big(&err) {
                        this.operations.too_big.store(true, Ordering::Release);
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let refused = match envelope(&message) {
                Some(Envelope { kind, id: Some(id) }) if kind == "subscribe" || kind == "start" => {
                    (!this.operations.admit(&id)).then(|| this.refusal(&id))
                }
                _ => None,
            };
            match refused {
                Some(refusal) => this.refusal = Some(refusal),
                None => return Poll::Ready(Some(Ok(message))),
            }
        }
    }
}
