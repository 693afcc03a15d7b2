//! Opens the database (embedded SQLite by default, PostgreSQL by URL) and applies migrations.
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::config::Config;

/// Connects with pool limits and SQLite's WAL mode plus a busy timeout (so concurrent writers
/// wait instead of failing with "database is locked"), counts statements, and migrates.
pub async fn connect(
    config: &Config,
    statements: Arc<AtomicU64>,
) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(config.effective_database_url());
    options
        .max_connections(config.db_max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let mut db = Database::connect(options).await?;
    db.set_metric_callback(move |_| {
        statements.fetch_add(1, Ordering::Relaxed);
    });
    Migrator::up(&db, None).await?;
    Ok(db)
}
