//! The application: shared state, the HTTP router, binding and graceful shutdown. `main.rs`,
//! tests and benchmarks all start the server through `Application::build`.
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;

use crate::{
    auth,
    config::Config,
    db,
    domain::{presence, typing},
    events::Bus,
    graphql, http,
    limits::Limits,
    server,
    storage::Storage,
};

/// Everything a request may need; cheap to clone (all handles).
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub db: DatabaseConnection,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Token signing and verification.
    pub keys: Arc<auth::token::TokenKeys>,
    /// A hash of a random password, verified against when a login names no account.
    pub dummy_password_hash: Arc<str>,
    /// SQL statements run since start (tests and benchmarks read it to catch N+1 queries).
    pub sql_statements: Arc<AtomicU64>,
    /// Where events are published and subscribed.
    pub bus: Bus,
    /// Who is online.
    pub presence: Arc<presence::Registry>,
    /// Who is typing where.
    pub typing: Arc<typing::Tracker>,
    /// Uploaded files.
    pub storage: Storage,
    /// Rate limits (shared through Redis when configured).
    pub limits: Arc<Limits>,
    /// Key for signed download links (derived from the JWT secret, never the secret itself).
    pub link_secret: Arc<[u8]>,
}

impl AppState {
    /// Creates the data directory, opens and migrates the database (waiting while it is
    /// unreachable, see `db::connect`), loads the signing secret, opens the file store.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&config.data_dir)?;
        let secret =
            auth::secret::load_or_generate(config.jwt_secret.as_deref(), &config.data_dir)?;
        if config.jwt_secret.is_none() && !config.is_sqlite() {
            tracing::warn!(
                "JWT_SECRET is not set: tokens are signed with this instance's generated secret; \
                 set JWT_SECRET to the same value on every instance that shares the database"
            );
        }
        let sql_statements = Arc::new(AtomicU64::new(0));
        let db = db::connect(&config, sql_statements.clone()).await?;
        let dummy = uuid::Uuid::new_v4().to_string();
        let dummy_password_hash = auth::password::hash(dummy)
            .await
            .map_err(|e| anyhow::anyhow!(e.message().to_string()))?
            .into();
        let storage = Storage::local(&config.data_dir)?;
        let link_secret: Arc<[u8]> = {
            use sha2::Digest;
            sha2::Sha256::digest(format!("goftgu download links\n{secret}"))
                .to_vec()
                .into()
        };
        let bus = match &config.redis_url {
            Some(url) => Bus::with_redis(url, config.redis_prefix.clone()).await?,
            None => Bus::local(),
        };
        let limits = Arc::new(Limits::new(&config, bus.redis()));
        let state = Self {
            db,
            keys: Arc::new(auth::token::TokenKeys::new(
                &secret,
                config.token_ttl_seconds,
            )),
            config: Arc::new(config),
            dummy_password_hash,
            sql_statements,
            presence: Arc::new(presence::Registry::new(bus.redis().cloned())),
            typing: Arc::default(),
            bus,
            storage,
            link_secret,
            limits,
        };
        state.start_background_tasks();
        Ok(state)
    }

    /// Typing expiry (every second), presence heartbeats and rate-limiter pruning, for the life
    /// of the process.
    fn start_background_tasks(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            let mut typing_tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut heartbeat_tick = tokio::time::interval(presence::HEARTBEAT);
            loop {
                tokio::select! {
                    _ = typing_tick.tick() => typing::expire(&app).await,
                    _ = heartbeat_tick.tick() => {
                        presence::heartbeat(&app).await;
                        app.limits.retain_recent();
                    }
                }
            }
        });
    }

    /// SQL statements run so far.
    pub fn sql_statement_count(&self) -> u64 {
        self.sql_statements.load(Ordering::Relaxed)
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
}

impl Application {
    /// Builds the state and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let addr = config.listen_addr();
        let state = AppState::new(config).await?;
        let schema = graphql::build_schema(state.clone());
        let router = http::router(state.clone(), schema);
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            router,
            state,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (tests read counters from it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "goftgu is listening");
        // Handlers see the peer address (`ConnectInfo<SocketAddr>`): rate limits per client.
        let timeouts = server::Timeouts::from_config(&self.state.config);
        server::serve(self.listener, self.router, timeouts, shutdown).await;
        self.state.db.clone().close().await.ok();
        tracing::info!("goftgu stopped");
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        tokio::signal::ctrl_c().await.ok();
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received");
}
