//! The composition root: builds the shared state (`state::AppState`) from the configuration,
//! starts its background tasks, assembles the router and serves it until shutdown. `main.rs`,
//! tests and benchmarks all start the server through `Application::build`.
use std::{
    future::Future,
    sync::{Arc, atomic::AtomicU64},
};

use tokio::net::TcpListener;

use crate::{
    auth,
    config::Config,
    db,
    domain::{messages::group_commit::SendQueue, playback, polls, presence, push, typing, voice},
    drain::Drain,
    events::{self, Bus},
    graphql, http,
    limits::Limits,
    metrics::Metrics,
    server,
    state::AppState,
    storage::{Objects, Storage},
};

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
        let vapid = Arc::new(auth::vapid::VapidKey::load_or_generate(
            config.push.vapid_private_key.as_deref(),
            &config.data_dir,
        )?);
        if config.push.vapid_private_key.is_none() && !config.is_sqlite() {
            tracing::warn!(
                "GOFTGU_VAPID_PRIVATE_KEY is not set: pushes are signed with this instance's \
                 generated key; set it to the same value on every instance that shares the \
                 database (browsers subscribe with its public key)"
            );
        }
        let voice = &config.voice;
        if !voice.turn_urls.is_empty() && voice.turn_secret.is_none() {
            tracing::warn!(
                "GOFTGU_TURN_URLS is set without GOFTGU_TURN_SECRET: the TURN servers are not \
                 offered (browsers refuse a TURN server without credentials)"
            );
        }
        let sql_statements = Arc::new(AtomicU64::new(0));
        let is_sqlite = config.is_sqlite();
        let metrics = Arc::new(Metrics::default());
        let db = db::connect(&config, sql_statements.clone(), metrics.sql_seconds.clone()).await?;
        let dummy = uuid::Uuid::new_v4().to_string();
        let dummy_password_hash = auth::password::hash(dummy)
            .await
            .map_err(|e| anyhow::anyhow!(e.diagnostic()))?
            .into();
        let mut storage = Storage::local(&config.data_dir)?;
        if config.s3.bucket.is_some() {
            let objects = Objects::s3(&config.s3)?;
            // In the background: an unreachable store is retried for minutes, and it may come
            // up after this instance.
            tokio::spawn({
                let objects = objects.clone();
                async move { objects.probe().await }
            });
            storage = storage.with_objects(objects);
        }
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
        let sessions = Arc::new(crate::domain::session_cache::SessionCache::new(bus.redis()));
        let drain = Drain::new(std::time::Duration::from_secs(config.drain_seconds));
        let sqlite_writes: Option<Arc<tokio::sync::Mutex<()>>> = is_sqlite.then(Arc::default);
        let sends = sqlite_writes
            .clone()
            .map(|turn| SendQueue::start(db.clone(), bus.clone(), turn, metrics.clone()));
        let state = Self::of(crate::state::Handles {
            db,
            keys: Arc::new(auth::token::TokenKeys::new(
                &secret,
                config.token_ttl_seconds,
            )),
            vapid,
            config: Arc::new(config),
            dummy_password_hash,
            sql_statements,
            presence: Arc::new(events::presence::Registry::new(bus.redis().cloned())),
            typing: Arc::default(),
            bus,
            storage,
            link_secret,
            limits,
            drain,
            metrics,
            sessions,
            sqlite_writes,
            sends,
        });
        Ok(state)
    }
}

/// The server's periodic work: typing expiry (every second), closing due polls, playback
/// auto-advance, presence heartbeats and rate-limiter pruning, the sweep that frees voice seats
/// after the grace period, and the Web Push worker (polled beside the sweeps in the same task, so
/// a slow push service delays none of them). Owned by the `Application`: stopped when it stops
/// serving, before the pool closes (a task left running would work on a closed pool), and
/// aborted if the owner is dropped.
struct BackgroundTasks(tokio::task::JoinHandle<()>);

impl BackgroundTasks {
    fn start(app: AppState) -> Self {
        Self(tokio::spawn(async move {
            let mut typing_tick = tokio::time::interval(std::time::Duration::from_secs(1));
            let mut heartbeat_tick = tokio::time::interval(presence::HEARTBEAT);
            let mut playback_tick = tokio::time::interval(std::time::Duration::from_millis(
                app.config.playback_tick_ms.max(10),
            ));
            playback_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut poll_tick = tokio::time::interval(std::time::Duration::from_millis(
                app.config.poll_tick_ms.max(10),
            ));
            poll_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut voice_tick = tokio::time::interval(voice::grace::sweep_every(&app));
            voice_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let sweeps = async {
                loop {
                    tokio::select! {
                        _ = typing_tick.tick() => typing::expire(&app).await,
                        _ = poll_tick.tick() => polls::close_due(&app).await,
                        _ = playback_tick.tick() => playback::sweep(&app).await,
                        _ = heartbeat_tick.tick() => {
                            presence::heartbeat(&app).await;
                            app.limits.retain_recent();
                        }
                        _ = voice_tick.tick() => voice::grace::sweep(&app).await,
                    }
                }
            };
            tokio::join!(sweeps, push::worker::run(&app));
        }))
    }

    /// Stops the tasks and waits until they are gone.
    async fn stop(mut self) {
        self.0.abort();
        let _ = (&mut self.0).await;
    }
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The most the clean-up after the drain (presence of dropped sockets, closing the pool) adds.
const CLEANUP: std::time::Duration = std::time::Duration::from_secs(2);

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    state: AppState,
    tasks: BackgroundTasks,
}

impl Application {
    /// Builds the state and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let mut config = config;
        // Bound first: the links the server hands out name the port it really serves on.
        let listener = TcpListener::bind(config.listen_addr()).await?;
        if config.public_url.is_none() && config.host.is_unspecified() {
            tracing::warn!(
                "GOFTGU_PUBLIC_URL is not set: links are made for localhost; set it to the \
                 address clients use (the proxy's, the domain's)"
            );
        }
        config.serve_on(listener.local_addr()?);
        let state = AppState::new(config).await?;
        let documents = Arc::new(graphql::documents::DocumentCache::new(&state.metrics));
        let schema = graphql::build_schema(state.clone(), documents.clone());
        let router = http::router(state.clone(), schema, documents);
        let tasks = BackgroundTasks::start(state.clone());
        Ok(Self {
            listener,
            router,
            state,
            tasks,
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

    /// Serves until `shutdown` resolves, then drains (`crate::drain`): not ready and accepting
    /// nothing at once; background work stops, so no heartbeat renews a claim; this instance's
    /// presence claims go and every WebSocket is closed with 1012; requests in flight finish.
    /// At `GOFTGU_DRAIN_SECONDS` whatever is left is dropped.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.listener.local_addr()?, "goftgu is listening");
        // Handlers see the peer address (`ConnectInfo<SocketAddr>`): rate limits per client.
        let timeouts = server::Timeouts::from_config(&self.state.config);
        let drain = self.state.drain.clone();
        let serving = server::serve(self.listener, self.router, timeouts, drain.clone());
        let state = &self.state;
        let tasks = self.tasks;
        let stopping = async {
            shutdown.await;
            drain.begin();
            let began = std::time::Instant::now();
            tracing::info!(
                limit_seconds = state.config.drain_seconds,
                "draining: not ready, accepting no connections"
            );
            tasks.stop().await;
            presence::stopping(state).await;
            drain.close_sockets();
            tokio::select! {
                () = drain.released() => {}
                () = drain.over() => {}
            }
            began
        };
        let ((), began) = tokio::join!(serving, stopping);
        if drain.is_over() {
            tracing::warn!("drain deadline reached: dropping the connections left");
        }
        // Users whose sockets were dropped before their goodbye leave now; this clean-up and
        // closing the pool get a moment of their own, whatever the database or Redis do.
        let cleanup = async {
            presence::leave_all(state).await;
            // The last events (offline announcements, messages answered at the end) reach the
            // other instances before this one goes.
            if let Some(redis) = state.bus.redis() {
                redis.flush(CLEANUP / 2).await;
            }
            state.db.clone().close().await.ok();
        };
        if tokio::time::timeout(CLEANUP, cleanup).await.is_err() {
            tracing::warn!("clean-up after the drain timed out");
        }
        tracing::info!(
            drained_ms = began.elapsed().as_millis() as u64,
            "goftgu stopped"
        );
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
