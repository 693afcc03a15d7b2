//! A goftgu release server as a child process on its own data directory and database, pinned to
//! the server cores, reachable on a loopback port; stopped when dropped.
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context;

use crate::{db::Backend, system};

/// How to start one instance.
#[derive(Clone, Debug)]
pub struct Launch {
    pub database_url: String,
    pub data_dir: PathBuf,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub jwt_secret: String,
}

impl Launch {
    /// One instance on a fresh database in `data_dir`, with the in-process event bus.
    pub fn new(database_url: String, data_dir: PathBuf) -> Self {
        Launch {
            database_url,
            data_dir,
            redis_url: None,
            redis_prefix: format!("goftgu-bench-{}:", uuid::Uuid::new_v4().simple()),
            jwt_secret: format!("bench-{}", uuid::Uuid::new_v4()),
        }
    }

    /// The deployment the live path is measured on (scenarios 2, 2b and 3), and its name in the
    /// report: on PostgreSQL with `TEST_REDIS_URL` set, events go through Redis, as they do
    /// wherever instances share a database; on SQLite, the in-process bus.
    pub fn live(
        backend: &Backend,
        database_url: String,
        data_dir: PathBuf,
    ) -> (Self, &'static str) {
        let mut launch = Self::new(database_url, data_dir);
        let redis = std::env::var("TEST_REDIS_URL").ok();
        match (backend, redis) {
            (Backend::Postgres(_), Some(url)) => {
                launch.redis_url = Some(url);
                (launch, "postgres+redis")
            }
            _ => (launch, backend.name()),
        }
    }
}

/// The rate limits raised far beyond any scenario (the harness is a load generator, not people),
/// through the same settings operators use; the limiter still runs (and is measured), it never
/// refuses.
const UNLIMITED: [(&str, &str); 15] = [
    ("GOFTGU_LOGIN_ATTEMPTS_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_SEND_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_SEND_BURST", "1000000000"),
    ("GOFTGU_LIMIT_REACTIONS_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_REACTIONS_BURST", "1000000000"),
    ("GOFTGU_LIMIT_TYPING_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_TYPING_BURST", "1000000000"),
    ("GOFTGU_LIMIT_UPLOADS_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_UPLOADS_BURST", "1000000000"),
    ("GOFTGU_LIMIT_INVITES_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_INVITES_BURST", "1000000000"),
    ("GOFTGU_LIMIT_REGISTER_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_REGISTER_BURST", "1000000000"),
    ("GOFTGU_LIMIT_LOGIN_PER_MINUTE", "1000000000"),
    ("GOFTGU_LIMIT_LOGIN_BURST", "1000000000"),
];

/// A running instance.
pub struct Goftgu {
    child: Child,
    pub base: String,
    pub port: u16,
}

impl Goftgu {
    pub async fn start(launch: &Launch) -> anyhow::Result<Self> {
        let port = free_port()?;
        std::fs::create_dir_all(&launch.data_dir)?;
        let log = std::fs::File::create(launch.data_dir.join(format!("server-{port}.log")))?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_goftgu"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("GOFTGU_HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("GOFTGU_DATA_DIR", &launch.data_dir)
            .env("DATABASE_URL", &launch.database_url)
            .env("JWT_SECRET", &launch.jwt_secret)
            .env("GOFTGU_REDIS_PREFIX", &launch.redis_prefix)
            // The scenarios open 10,000 subscribed sockets, 1,000 and more per user: above the
            // defaults, which fit people.
            // No playback sweep statements inside the per-request statement counts.
            .env("GOFTGU_PLAYBACK_TICK_MS", "3600000")
            .env("GOFTGU_MAX_SOCKETS", "1000000")
            .env("GOFTGU_MAX_SOCKETS_PER_USER", "1000000")
            // The load clients keep idle pooled connections for 90 s; the server must not close
            // them first between scenarios.
            .env("GOFTGU_KEEP_ALIVE_SECONDS", "600")
            .envs(UNLIMITED)
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(redis) = &launch.redis_url {
            command.env("REDIS_URL", redis);
        }
        system::pin_child_to_server_cores(&mut command);
        let child = command.spawn().context("start goftgu")?;
        let mut server = Goftgu {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
        };
        server.wait_healthy(&launch.data_dir).await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self, dir: &std::path::Path) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = http.get(format!("{}/healthz", self.base)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(dir.join(format!("server-{}.log", self.port)))
                    .unwrap_or_default();
                anyhow::bail!("goftgu exited ({status}): {log}");
            }
            if Instant::now() > deadline {
                anyhow::bail!("goftgu did not become healthy in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn graphql_url(&self) -> String {
        format!("{}/graphql", self.base)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/graphql", self.port)
    }

    /// `goftgu_sql_statements_total` from `/metrics`.
    pub async fn sql_statements(&self, http: &reqwest::Client) -> anyhow::Result<u64> {
        let body = http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        body.lines()
            .find_map(|l| l.strip_prefix("goftgu_sql_statements_total "))
            .context("no statement counter in /metrics")?
            .trim()
            .parse()
            .context("statement counter")
    }
}

impl Drop for Goftgu {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
