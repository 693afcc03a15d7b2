//! goftgu: one GraphQL API for accounts, chats, rooms with music, and live events.
//! Data flows one way: transport (`graphql`, `http`) → `domain` → `entity` (+ `auth`).

/// The composition root: builds the state, the router and the server.
pub mod app;
/// Credentials: password hashing, tokens, the signing secret.
pub mod auth;
/// Configuration from flags and environment.
pub mod config;
/// Database connection and migrations.
pub mod db;
/// Business rules per area; every authorization check lives here.
pub mod domain;
/// An instance's way out: readiness, closing sockets, the drain's deadline.
pub mod drain;
/// sea-orm entities, one per table.
pub mod entity;
/// The single error type and its mappings to GraphQL and HTTP.
pub mod error;
/// The event bus: in-process, or shared through Redis.
pub mod events;
/// The GraphQL schema and resolvers.
pub mod graphql;
/// HTTP routes: GraphQL, WebSocket, health, playground.
pub mod http;
/// Rate limits per user, client address and login name (local or shared through Redis).
pub mod limits;
/// Allocator settings applied at start-up.
pub mod memory;
/// What `/metrics` reports (Prometheus text).
pub mod metrics;
/// The serving loop: connections with header, keep-alive and body timeouts.
pub mod server;
/// The shared handles every layer needs (a leaf: imports nothing above it).
pub mod state;
/// Where uploaded bytes live.
pub mod storage;
/// Logging set-up.
pub mod telemetry;

pub use app::Application;
pub use config::Config;
pub use state::AppState;
