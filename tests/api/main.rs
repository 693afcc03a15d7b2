//! The integration tests: one binary (linking is the slow step), the real app on 127.0.0.1:0 per
//! test with a fresh database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), driven through
//! real HTTP and WebSocket clients.
mod accounts;
mod helpers;
mod http;
mod schema;
mod startup;
mod tokens;
mod validation;
mod websocket;
