//! The integration tests: one binary (linking is the slow step), the real app on 127.0.0.1:0 per
//! test with a fresh database (SQLite, or PostgreSQL when TEST_DATABASE_URL is set), driven through
//! real HTTP and WebSocket clients.
mod accounts;
mod anonymous;
mod authz;
mod chats;
mod cluster;
mod db_outage;
mod downloads;
mod edges;
mod file_bytes;
mod files;
mod fixtures;
mod groups;
mod helpers;
mod http;
mod live;
mod live_presence;
mod message_actions;
mod messages;
mod music;
mod n_plus_one;
mod outbox;
mod playback;
mod public_graphql;
mod public_transport;
mod rate_limits;
mod read_state;
mod rooms;
mod schema;
mod search;
mod startup;
mod tokens;
mod upload_hygiene;
mod uploads;
mod validation;
mod websocket;
