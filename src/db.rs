//! Opens the database (embedded SQLite by default, PostgreSQL by URL) and applies migrations,
//! waiting for a database that is not up yet; tells an unreachable database apart from other
//! database errors, so an outage answers "try again" instead of looking like a refusal, and
//! recognises a unique-constraint violation (and which constraint) by kind and name. The
//! migrations themselves run in `migrate` (on PostgreSQL under an advisory lock).
mod migrate;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use prometheus_client::metrics::histogram::Histogram;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, RuntimeErr,
    sqlx::{
        self,
        sqlite::{SqliteJournalMode, SqliteSynchronous},
    },
};

use crate::config::Config;

/// Turns on SQLite's query planner stability guarantee for the connection. Without it, a
/// statement whose plan looked at a bound value (`LIMIT ?` in every page query, with SQLite
/// built with STAT4 as sqlx builds it) is expired by every new binding and prepared again on
/// every run: 15% of the server's CPU on a history page (perf, BENCHMARKS.md). With it, a
/// statement keeps the plan it was prepared with, and sqlx's statement cache does its job.
async fn stable_plans(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    // SAFETY: `db` is this connection's open handle, held locked for the call; this option
    // takes an int (1: on) and an int pointer for the new value, which may be null.
    let rc = unsafe {
        libsqlite3_sys::sqlite3_db_config(
            db,
            libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as std::ffi::c_int,
            std::ptr::null_mut::<std::ffi::c_int>(),
        )
    };
    if rc == libsqlite3_sys::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!("SQLITE_DBCONFIG_ENABLE_QPSG failed with code {rc}").into(),
        ))
    }
}

/// First wait before retrying an unreachable database at start-up; doubled after each attempt.
const FIRST_RETRY: Duration = Duration::from_millis(250);
/// Longest wait between two start-up attempts.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// Connects and migrates. While the database is unreachable it retries with exponential backoff
/// (logged at every attempt), for ever or until `db_startup_wait_seconds`; other errors (a bad
/// URL, wrong credentials, a failed migration) end start-up at once.
pub async fn connect(
    config: &Config,
    statements: Arc<AtomicU64>,
    latency: Histogram,
) -> anyhow::Result<DatabaseConnection> {
    let started = Instant::now();
    let give_up = config.db_startup_wait_seconds.map(Duration::from_secs);
    let mut wait = FIRST_RETRY;
    let mut attempt = 1u32;
    loop {
        let err = match connect_once(config, statements.clone(), latency.clone()).await {
            Ok(db) => {
                if attempt > 1 {
                    tracing::info!(attempt, "database reachable");
                }
                return Ok(db);
            }
            Err(err) => err,
        };
        let waited = started.elapsed();
        let out_of_time = give_up.is_some_and(|limit| waited + wait > limit);
        if !is_unavailable(&err) || misconfigured(&err) || out_of_time {
            return Err(err.into());
        }
        tracing::warn!(
            error = %err,
            attempt,
            retry_in_ms = wait.as_millis() as u64,
            "database unreachable at start-up; retrying"
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY);
        attempt += 1;
    }
}

/// One attempt: pool limits, SQLite's WAL mode plus a busy timeout (so concurrent writers wait
/// instead of failing with "database is locked"), the statement counter, migrations (one
/// instance at a time).
async fn connect_once(
    config: &Config,
    statements: Arc<AtomicU64>,
    latency: Histogram,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(config.effective_database_url());
    options
        .max_connections(config.db_max_connections)
        // Also bounds opening a connection: an unreachable database answers within it.
        .acquire_timeout(Duration::from_secs(
            config.db_acquire_timeout_seconds.max(1),
        ))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        })
        .map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|conn, _| Box::pin(async move { stable_plans(conn).await }))
        });
    let mut db = Database::connect(options).await?;
    db.set_metric_callback(move |info| {
        statements.fetch_add(1, Ordering::Relaxed);
        latency.observe(info.elapsed.as_secs_f64());
    });
    if let Err(err) = migrate::up(&db).await {
        db.close().await.ok();
        return Err(err);
    }
    Ok(db)
}

/// The pool's connections: how many it holds and how many are idle (for `/metrics`).
pub fn pool_use(db: &DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}

/// A unique constraint (or primary key) that a write ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueViolation<'e> {
    /// The database named it (PostgreSQL does): one of `migration::unique`.
    Named(&'e str),
    /// The database did not say which (SQLite does not); the caller looks the value up.
    Unnamed,
}

/// Whether `err` is a unique-constraint or primary-key violation, and of which constraint,
/// decided by the error's kind and the constraint name the database reports, never its text.
pub fn unique_violation(err: &DbErr) -> Option<UniqueViolation<'_>> {
    let (DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e))) = err
    else {
        return None;
    };
    let sqlx::Error::Database(e) = e.as_ref() else {
        return None;
    };
    if e.kind() != sqlx::error::ErrorKind::UniqueViolation {
        return None;
    }
    Some(match e.constraint() {
        Some(name) => UniqueViolation::Named(name),
        None => UniqueViolation::Unnamed,
    })
}

/// Whether `err` means the database cannot be reached or cannot serve just now (as opposed to
/// a problem with the statement or the data), decided by the error's kind, never its text: no
/// connection within the acquire timeout, a closed pool, a connection that could not be opened
/// (sea-orm's `Conn` kind, whatever the cause: refused, reset, a handshake cut short), one that
/// broke mid-statement (I/O), or a server that says it is shutting down, starting or full.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

/// A connection refused for a reason waiting will not fix: a bad setting or TLS setup, wrong
/// credentials (SQLSTATE class 28) or a database that does not exist (3D000). A running server
/// still answers these "try again" (the operator is fixing it); a starting one exits.
fn misconfigured(err: &DbErr) -> bool {
    let DbErr::Conn(RuntimeErr::SqlxError(e)) = err else {
        return false;
    };
    match e.as_ref() {
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(e) => e
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| postgres_refusal(pg.code())),
        _ => false,
    }
}

fn postgres_refusal(sqlstate: &str) -> bool {
    sqlstate.starts_with("28") || sqlstate == "3D000"
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(e) => {
            if let Some(pg) = e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_unavailable(pg.code())
            } else if let Some(sqlite) = e.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                sqlite_busy(sqlx::error::DatabaseError::code(sqlite).as_deref())
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLSTATEs for "not now": class 08 (connection exception), 57P01–57P03 (administrator or
/// crash shutdown, cannot connect now) and 53300 (too many connections).
fn postgres_unavailable(sqlstate: &str) -> bool {
    sqlstate.starts_with("08") || matches!(sqlstate, "57P01" | "57P02" | "57P03" | "53300")
}

/// SQLITE_BUSY (5) or SQLITE_LOCKED (6), extended codes included: the file stayed locked
/// past the busy timeout.
fn sqlite_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok())
        .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnAcquireErr;

    fn sqlx_err(err: sqlx::Error) -> Arc<sqlx::Error> {
        Arc::new(err)
    }

    /// The connection's QPSG flag as SQLite reports it (-1 leaves it unchanged).
    async fn qpsg(conn: &mut sqlx::SqliteConnection) -> std::ffi::c_int {
        let mut handle = conn.lock_handle().await.unwrap();
        let mut on: std::ffi::c_int = -1;
        // SAFETY: as in `stable_plans`, with -1 to read the flag into `on`.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_db_config(
                handle.as_raw_handle().as_ptr(),
                libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                -1 as std::ffi::c_int,
                &mut on as *mut std::ffi::c_int,
            )
        };
        assert_eq!(rc, libsqlite3_sys::SQLITE_OK);
        on
    }

    #[tokio::test]
    async fn sqlite_connections_keep_their_plans() {
        use sea_orm::sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect("sqlite::memory:")
            .await
            .unwrap();
        assert_eq!(qpsg(&mut conn).await, 0, "off by default");
        stable_plans(&mut conn).await.unwrap();
        assert_eq!(qpsg(&mut conn).await, 1);

        // Every connection of the server's own pool has it.
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::parse_from(["goftgu"]);
        config.database_url = Some(format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("plans.db").display()
        ));
        let db = connect(&config, Arc::default(), Histogram::new([1.0]))
            .await
            .unwrap();
        let pool = db.get_sqlite_connection_pool();
        let (mut first, mut second) =
            (pool.acquire().await.unwrap(), pool.acquire().await.unwrap());
        assert_eq!(qpsg(&mut first).await, 1);
        assert_eq!(qpsg(&mut second).await, 1);
    }

    #[test]
    fn unreachable_database_errors_are_unavailability() {
        let refused = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let cases = [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::Conn(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::Io(refused())))),
            DbErr::Query(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::Io(
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
            )))),
            DbErr::Exec(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::PoolTimedOut))),
            DbErr::Exec(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::PoolClosed))),
            // sqlx reports a peer that closes during the TLS request as a protocol error.
            DbErr::Conn(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::Protocol(
                "unexpected response from SSLRequest: 0x00".into(),
            )))),
        ];
        for err in cases {
            assert!(is_unavailable(&err), "{err:?}");
        }
    }

    #[test]
    fn other_database_errors_are_not() {
        let cases = [
            DbErr::RecordNotFound("x".into()),
            DbErr::Custom("connection refused".into()), // the text does not count
            DbErr::Query(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::RowNotFound))),
            DbErr::Query(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::Protocol(
                "unexpected".into(),
            )))),
            DbErr::Query(RuntimeErr::Internal("timeout".into())),
        ];
        for err in cases {
            assert!(!is_unavailable(&err), "{err:?}");
        }
    }

    #[test]
    fn a_bad_setting_is_not_waited_for_at_start_up() {
        let config = DbErr::Conn(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::Configuration(
            "bad URL".into(),
        ))));
        assert!(
            is_unavailable(&config),
            "a running server answers try again"
        );
        assert!(misconfigured(&config), "a starting one exits");
        let refused = DbErr::Conn(RuntimeErr::SqlxError(sqlx_err(sqlx::Error::Io(
            std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        ))));
        assert!(!misconfigured(&refused));
    }

    /// A database error as a driver reports it: a kind, maybe a constraint name, a message.
    #[derive(Debug)]
    struct Reported {
        kind: fn() -> sqlx::error::ErrorKind,
        constraint: Option<&'static str>,
        message: &'static str,
    }

    impl std::fmt::Display for Reported {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.message)
        }
    }

    impl std::error::Error for Reported {}

    impl sqlx::error::DatabaseError for Reported {
        fn message(&self) -> &str {
            self.message
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn constraint(&self) -> Option<&str> {
            self.constraint
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            (self.kind)()
        }
    }

    fn reported(
        kind: fn() -> sqlx::error::ErrorKind,
        constraint: Option<&'static str>,
        message: &'static str,
    ) -> DbErr {
        let err = sqlx::Error::Database(Box::new(Reported {
            kind,
            constraint,
            message,
        }));
        DbErr::Exec(RuntimeErr::SqlxError(sqlx_err(err)))
    }

    #[test]
    fn unique_violations_are_known_by_kind_and_constraint_name() {
        use sqlx::error::ErrorKind;
        let named = reported(
            || ErrorKind::UniqueViolation,
            Some(migration::unique::USERS_EMAIL),
            "duplicate key value violates unique constraint",
        );
        assert_eq!(
            unique_violation(&named),
            Some(UniqueViolation::Named("users_email_key"))
        );
        // SQLite names no constraint: the caller looks the value up.
        let unnamed = reported(
            || ErrorKind::UniqueViolation,
            None,
            "UNIQUE constraint failed: users.username_key",
        );
        assert_eq!(unique_violation(&unnamed), Some(UniqueViolation::Unnamed));
        // The text does not count, whatever it says.
        for err in [
            reported(
                || ErrorKind::ForeignKeyViolation,
                Some("users_email_key"),
                "UNIQUE constraint failed: users.email",
            ),
            reported(|| ErrorKind::Other, None, "duplicate key value"),
            DbErr::Custom("UNIQUE constraint failed: users.email".into()),
            DbErr::Query(RuntimeErr::Internal("unique violation".into())),
        ] {
            assert_eq!(unique_violation(&err), None, "{err:?}");
        }
    }

    #[tokio::test]
    async fn sqlite_reports_a_unique_violation_without_a_name() {
        use sea_orm::ConnectionTrait;
        let db = Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE t (k TEXT UNIQUE, n TEXT NOT NULL)")
            .await
            .unwrap();
        db.execute_unprepared("INSERT INTO t VALUES ('a', 'x')")
            .await
            .unwrap();
        let duplicate = db
            .execute_unprepared("INSERT INTO t VALUES ('a', 'y')")
            .await
            .unwrap_err();
        assert_eq!(unique_violation(&duplicate), Some(UniqueViolation::Unnamed));
        let missing = db
            .execute_unprepared("INSERT INTO t VALUES ('b', NULL)")
            .await
            .unwrap_err();
        assert_eq!(unique_violation(&missing), None, "{missing:?}");
    }

    #[test]
    fn server_states_that_mean_not_now() {
        for code in ["08006", "08001", "57P01", "57P03", "53300"] {
            assert!(postgres_unavailable(code), "{code}");
        }
        for code in ["23505", "22021", "42P01", "28P01", "3D000"] {
            assert!(!postgres_unavailable(code), "{code}");
        }
        for code in ["28P01", "28000", "3D000"] {
            assert!(postgres_refusal(code), "{code}");
        }
        assert!(!postgres_refusal("57P03"));
        assert!(sqlite_busy(Some("5")));
        assert!(sqlite_busy(Some("517"))); // SQLITE_BUSY_SNAPSHOT
        assert!(sqlite_busy(Some("6")));
        assert!(!sqlite_busy(Some("2067"))); // unique constraint
        assert!(!sqlite_busy(None));
    }
}
