//! Caps on subscription WebSockets, so no client can hold a whole instance: sockets per instance
//! (503 before the upgrade), sockets per user (closed with 1008 after authentication) and
//! operations per socket (one more is refused with the protocol's per-operation `error`,
//! `RATE_LIMITED`, and the socket stays open). Also tells an oversized message apart (1009).
use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use async_graphql::http::WebSocketProtocols;
use axum::{
    Json,
    extract::ws::Message,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
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

/// The operations running on one socket, by a hash of their id as the protocol keeps it (its
/// JSON string; client ids can be long, a hash keeps the state at eight bytes per operation).
pub struct Operations {
    active: Mutex<Vec<u64>>,
    max: usize,
}

static ID_HASHER: LazyLock<std::collections::hash_map::RandomState> =
    LazyLock::new(Default::default);

impl Operations {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            active: Mutex::default(),
            max,
        })
    }

    /// Admits a `subscribe`/`start` unless the socket already runs the most operations. A known
    /// id is admitted (the new operation replaces the one under that id).
    pub fn admit(&self, id: &str) -> bool {
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

    /// An operation ended (by itself, or on the client's `complete`).
    pub fn release(&self, id: &str) {
        let key = ID_HASHER.hash_one(id);
        let mut active = self.active.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = active.iter().position(|k| *k == key) {
            active.swap_remove(at);
        }
    }

    /// The per-operation error each protocol defines for an operation over the cap (`payload`
    /// is a list of errors in graphql-transport-ws, one error in the legacy protocol).
    pub fn refusal(&self, protocol: WebSocketProtocols, id: &str) -> Message {
        let error = serde_json::json!({
            "message": format!(
                "too many active subscriptions on this socket (at most {}); complete one first",
                self.max
            ),
            "extensions": { "code": "RATE_LIMITED" },
        });
        let payload = match protocol {
            WebSocketProtocols::GraphQLWS => serde_json::Value::Array(vec![error]),
            WebSocketProtocols::SubscriptionsTransportWS => error,
        };
        let message = serde_json::json!({ "type": "error", "id": id, "payload": payload });
        Message::Text(message.to_string().into())
    }
}
