//! The shared handles every layer needs (database pool, configuration, keys, event bus, presence
//! and typing stores, file store, rate limits, the drain, metrics), in a leaf module: it imports nothing above the
//! layers that use it, so `domain`, `events` and the transports depend on it and not on the
//! composition root (`app`), which builds it.
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use sea_orm::DatabaseConnection;

use crate::{
    auth,
    config::Config,
    drain::Drain,
    events::{Bus, presence, typing},
    limits::Limits,
    metrics::Metrics,
    storage::Storage,
};

/// Everything a request may need: one pointer, so a clone is one count (every request, socket
/// and live feed holds one), and its handles are reached through it (`Deref`).
#[derive(Clone)]
pub struct AppState(Arc<Handles>);

impl AppState {
    pub fn of(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

/// The handles themselves.
pub struct Handles {
    /// The database pool.
    pub db: DatabaseConnection,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Token signing and verification.
    pub keys: Arc<auth::token::TokenKeys>,
    /// The VAPID key pair that signs Web Push requests.
    pub vapid: Arc<auth::vapid::VapidKey>,
    /// A hash of a random password, verified against when a login names no account.
    pub dummy_password_hash: Arc<str>,
    /// SQL statements run since start (tests and benchmarks read it to catch N+1 queries).
    pub sql_statements: Arc<AtomicU64>,
    /// Where events are published and subscribed.
    pub bus: Bus,
    /// Who is online.
    pub presence: Arc<presence::Registry>,
    /// Who is typing where.
    pub typing: Arc<typing::Tracker>,
    /// Uploaded files.
    pub storage: Storage,
    /// Rate limits (shared through Redis when configured).
    pub limits: Arc<Limits>,
    /// Whether the instance is stopping, and what its stop waits for.
    pub drain: Drain,
    /// Key for signed download links (derived from the JWT secret, never the secret itself).
    pub link_secret: Arc<[u8]>,
    /// What `/metrics` reports.
    pub metrics: Arc<Metrics>,
    /// On SQLite, the turn of each write transaction (one writer at a time, in order).
    pub sqlite_writes: Option<Arc<tokio::sync::Mutex<()>>>,
    /// On SQLite, the writer that commits concurrent sends together.
    pub sends: Option<crate::domain::messages::group_commit::SendQueue>,
    /// Verified sessions, so requests need no statement to learn who asks.
    pub sessions: Arc<crate::domain::session_cache::SessionCache>,
}

impl Handles {
    /// SQL statements run so far.
    pub fn sql_statement_count(&self) -> u64 {
        self.sql_statements.load(Ordering::Relaxed)
    }
}
