//! Applies the migrations so that any number of instances may start at once. On PostgreSQL they
//! run under a session advisory lock held on one connection of their own (taken out of the pool),
//! so one instance migrates while the others wait for the lock and then find nothing left to do;
//! without it, two instances creating the same table at once fail on PostgreSQL's catalog
//! (`duplicate key value violates unique constraint "pg_type_typname_nsp_index"`). SQLite needs
//! nothing: its writers take turns on the file.
use std::sync::Arc;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    sqlx::{self, Connection},
};

/// The advisory lock's key: "goftgu:m" in ASCII, the same for every version of the server.
pub const LOCK_KEY: i64 = i64::from_be_bytes(*b"goftgu:m");

/// Brings the schema up to date; on PostgreSQL one instance at a time.
pub async fn up(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Migrator::up(db, None).await;
    }
    // Out of the pool (which may open a replacement), so the lock's connection is never lent to
    // a migration statement, whatever the pool's size.
    let mut lock = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .map_err(conn_err)?
        .detach();
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LOCK_KEY)
        .fetch_one(&mut lock)
        .await
        .map_err(exec_err)?;
    if !taken {
        tracing::info!("another instance is migrating the database; waiting for it");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(LOCK_KEY)
            .execute(&mut lock)
            .await
            .map_err(exec_err)?;
    }
    let migrated = Migrator::up(db, None).await;
    // Closing the session releases the lock too; unlocking first says so explicitly.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(LOCK_KEY)
        .execute(&mut lock)
        .await;
    if let Err(err) = unlocked {
        tracing::warn!(error = %err, "could not release the migration lock; closing its session");
    }
    lock.close().await.ok();
    migrated
}

fn conn_err(err: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(err)))
}

fn exec_err(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(Arc::new(err)))
}
