//! Database schema changes, one file per change, applied in order at start-up by `Migrator::up`.
pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_user;
mod m20261122_000002_create_session;
mod m20261122_000003_create_chat;
mod m20261122_000004_create_message;
mod m20261122_000005_create_file;

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
        ]
    }
}
