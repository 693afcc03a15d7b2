//! Database schema changes, one file per change, applied in order at start-up by `Migrator::up`.
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_user;
mod m20261122_000002_create_session;
mod m20261122_000003_create_chat;
mod m20261122_000004_create_message;
mod m20261122_000005_create_file;
mod m20261204_000006_create_playback;
mod m20261204_000007_create_voice;
mod m20261204_000008_track_metadata;
mod m20261205_000009_create_refresh_token;
mod m20261205_000010_create_friends_and_blocks;
mod m20261205_000011_create_notification;
mod m20261205_000012_create_mentions;
mod m20261205_000013_create_push;
mod m20261205_000014_create_pins_and_saved;
mod m20261205_000015_create_polls;
mod m20261205_000016_message_search;
mod m20261205_000017_create_link_previews;
mod m20261205_000018_create_threads;
mod m20261205_000019_partial_thread_index;

/// Runs raw SQL statements in order (for what the schema builder cannot say: partial indexes,
/// full-text search tables and their triggers).
async fn execute_all(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    for sql in statements {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

/// Names of the unique constraints the migrations create, as PostgreSQL reports them when a
/// write violates one (it names a column's `UNIQUE` `<table>_<column>_key`; SQLite names
/// none). Only the ones the server tells apart are listed.
pub mod unique {
    pub use crate::m20261122_000001_create_user::{USERS_EMAIL, USERS_USERNAME};
}

/// Every migration of the goftgu database, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_user::Migration),
            Box::new(m20261122_000002_create_session::Migration),
            Box::new(m20261122_000003_create_chat::Migration),
            Box::new(m20261122_000004_create_message::Migration),
            Box::new(m20261122_000005_create_file::Migration),
            Box::new(m20261204_000006_create_playback::Migration),
            Box::new(m20261204_000007_create_voice::Migration),
            Box::new(m20261204_000008_track_metadata::Migration),
            Box::new(m20261205_000009_create_refresh_token::Migration),
            Box::new(m20261205_000010_create_friends_and_blocks::Migration),
            Box::new(m20261205_000011_create_notification::Migration),
            Box::new(m20261205_000012_create_mentions::Migration),
            Box::new(m20261205_000013_create_push::Migration),
            Box::new(m20261205_000014_create_pins_and_saved::Migration),
            Box::new(m20261205_000015_create_polls::Migration),
            Box::new(m20261205_000016_message_search::Migration),
            Box::new(m20261205_000017_create_link_previews::Migration),
            Box::new(m20261205_000018_create_threads::Migration),
            Box::new(m20261205_000019_partial_thread_index::Migration),
        ]
    }
}
