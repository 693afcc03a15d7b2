//! Databases for a run: a fresh SQLite file or PostgreSQL database per server, and raw pools that
//! talk to them through the same driver (sqlx) with the server's durability settings, for the
//! baselines and for seeding big tables quickly.
use std::{path::Path, time::Duration};

use sea_orm::sqlx::{
    self, PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

/// The server's default pool size (GOFTGU_DB_MAX_CONNECTIONS); raw pools use the same.
pub const POOL_SIZE: u32 = 10;

/// Which database a scenario runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// The admin URL (TEST_DATABASE_URL); each server gets its own new database on that server.
    Postgres(String),
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// A new, empty database for one server: a file in `dir`, or `CREATE DATABASE`.
    pub async fn fresh(&self, dir: &Path) -> anyhow::Result<String> {
        match self {
            Backend::Sqlite => Ok(format!(
                "sqlite://{}?mode=rwc",
                dir.join("goftgu.db").display()
            )),
            Backend::Postgres(admin_url) => {
                let name = format!("goftgu_bench_{}", uuid::Uuid::new_v4().simple());
                let admin = PgPoolOptions::new()
                    .max_connections(1)
                    .connect(admin_url)
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&admin)
                    .await?;
                admin.close().await;
                Ok(with_database_name(admin_url, &name))
            }
        }
    }

    /// Drops every `goftgu_bench_*` database: before a run (an interrupted run's) and after it.
    pub async fn drop_leftovers(&self) -> anyhow::Result<()> {
        let Backend::Postgres(admin_url) = self else {
            return Ok(());
        };
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(admin_url)
            .await?;
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT datname FROM pg_database WHERE datname LIKE 'goftgu\\_bench\\_%'",
        )
        .fetch_all(&admin)
        .await?;
        for (name,) in names {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
            )))
            .execute(&admin)
            .await?;
        }
        admin.close().await;
        Ok(())
    }
}

fn with_database_name(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

/// A raw connection pool on a server's database.
#[derive(Clone)]
pub enum RawDb {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same sqlx code on either pool (`$p` is the pool in `$body`).
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::db::RawDb::Sqlite($p) => $body,
            $crate::db::RawDb::Postgres($p) => $body,
        }
    };
}

impl RawDb {
    /// Same settings as the server's `db::connect`: WAL, synchronous=NORMAL, a busy timeout,
    /// foreign keys on (SQLite); defaults (synchronous_commit on) for PostgreSQL.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            let options: SqliteConnectOptions = url.parse()?;
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(POOL_SIZE)
                .connect_with(options)
                .await?;
            Ok(RawDb::Sqlite(pool))
        } else {
            let pool = PgPoolOptions::new()
                .max_connections(POOL_SIZE)
                .connect(url)
                .await?;
            Ok(RawDb::Postgres(pool))
        }
    }

    /// `sql` with `?` placeholders, rewritten as `$1, $2, …` for PostgreSQL. Only the harness's
    /// own SQL text goes through here; values are always bound.
    pub fn sql(&self, sql: &str) -> sqlx::AssertSqlSafe<String> {
        sqlx::AssertSqlSafe(self.numbered(sql))
    }

    fn numbered(&self, sql: &str) -> String {
        match self {
            RawDb::Sqlite(_) => sql.to_string(),
            RawDb::Postgres(_) => {
                let mut out = String::with_capacity(sql.len() + 8);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push_str(&format!("${n}"));
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}
