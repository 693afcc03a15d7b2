//! The Redis side of the bus. Outgoing events are queued and published by a background task, so
//! a slow or absent Redis never delays a request. A listener task subscribes to one channel per
//! topic that has local subscribers (so an instance only receives what its clients want), hands
//! incoming events to the hub, and reconnects with backoff (re-subscribing) when Redis goes away.
//!
//! Pub/sub forgets what it could not deliver, so nothing here pretends to be reliable; gaps are
//! healed where the truth is, the database. Two things make that complete:
//! - after re-subscribing, the listener delivers `Event::LinkRestored` to every local topic, and
//!   each live feed then fills its chats' messages from the database up to their last `seq` and
//!   tells the client to resync the rest (`domain::live`);
//! - the publisher retries an event it could not publish (for up to `RETRY_FOR`, in order), so a
//!   message committed after a subscriber's refill but before this instance's own connection
//!   came back is still delivered (late, and dropped as a duplicate if it was filled already).
//!
//! Redis Streams (or NATS JetStream) would allow replay by id, but the database already holds
//! every message with a gap-free per-chat `seq` and knows who may read it; a second durable log
//! would need its own retention, trimming and access rules, and would still not cover the other
//! way events are lost (a slow subscriber overrunning its ring in `hub`). Filling from the
//! database covers both with one mechanism.
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use redis::{
    AsyncCommands,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Delivered, Event, Hub, Topic};

/// Events waiting to be published before new ones are dropped (and logged).
const OUTBOX: usize = 10_000;

/// How long an event that could not be published is retried before it is dropped (subscribers
/// elsewhere heal from the database when their own link comes back or the next message shows
/// the gap).
const RETRY_FOR: Duration = Duration::from_secs(30);

#[derive(Serialize)]
struct Outgoing<'a> {
    origin: Uuid,
    topic: Topic,
    event: &'a Event,
    /// When it was queued (Unix ms): the receiver's lag.
    sent_ms: i64,
}

#[derive(Deserialize)]
struct Incoming {
    origin: Uuid,
    topic: Topic,
    event: Event,
    #[serde(default)]
    sent_ms: Option<i64>,
}

/// The link's health as operators see it (`/metrics`).
#[derive(Debug, Default)]
pub struct LinkStats {
    /// Whether the subscription connection is up.
    subscribed: AtomicBool,
    /// Events queued for Redis and not yet published (or given up on).
    pending: AtomicU64,
    /// Events never shared with other instances (outbox full, or Redis away past the retries).
    dropped: AtomicU64,
    /// From publication on another instance to arrival here, of the latest event (ms).
    lag_ms: AtomicI64,
    /// Events received from other instances.
    received: AtomicU64,
}

impl LinkStats {
    pub fn subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn lag_ms(&self) -> i64 {
        self.lag_ms.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Handle to the Redis publisher and listener.
#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    prefix: String,
    origin: Uuid,
    outbox: mpsc::Sender<(String, String)>,
    commands: mpsc::UnboundedSender<Topic>,
    connection: ConnectionManager,
    stats: Arc<LinkStats>,
}

impl RedisLink {
    /// Connects (failing fast if Redis is unreachable at start-up) and starts both tasks.
    pub async fn start(url: &str, prefix: String, hub: Arc<Hub>) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_with_config(client.clone(), config).await?;
        let origin = Uuid::new_v4();
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let (commands, requests) = mpsc::unbounded_channel();
        let stats = Arc::new(LinkStats::default());
        tokio::spawn(publish_loop(connection.clone(), queued, stats.clone()));
        tokio::spawn(listen_loop(
            client,
            prefix.clone(),
            origin,
            hub,
            requests,
            stats.clone(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                prefix,
                origin,
                outbox,
                commands,
                connection,
                stats,
            }),
        })
    }

    /// Where the hub announces new topics.
    pub fn commands(&self) -> mpsc::UnboundedSender<Topic> {
        self.inner.commands.clone()
    }

    /// This instance's id (events it published are not delivered to it twice).
    pub fn origin(&self) -> Uuid {
        self.inner.origin
    }

    /// The channel and key prefix.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The link's health (subscription up, queue, drops, lag).
    pub fn stats(&self) -> &LinkStats {
        &self.inner.stats
    }

    /// Waits until every queued event was published (or given up on), at most `limit`: a
    /// draining instance shares its last events before it exits.
    pub async fn flush(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.inner.stats.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A connection for other Redis work (presence).
    pub fn connection(&self) -> ConnectionManager {
        self.inner.connection.clone()
    }

    /// Queues an event for the other instances.
    pub async fn publish(&self, topic: Topic, event: &Event) {
        let payload = match serde_json::to_string(&Outgoing {
            origin: self.inner.origin,
            topic,
            event,
            sent_ms: now_ms(),
        }) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(error = %err, "could not encode an event");
                return;
            }
        };
        let channel = topic.channel(&self.inner.prefix);
        self.inner.stats.pending.fetch_add(1, Ordering::Relaxed);
        if self.inner.outbox.try_send((channel, payload)).is_err() {
            self.inner.stats.pending.fetch_sub(1, Ordering::Relaxed);
            self.inner.stats.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("Redis outbox full: an event was not shared with other instances");
        }
    }
}

async fn publish_loop(
    mut connection: ConnectionManager,
    mut queued: mpsc::Receiver<(String, String)>,
    stats: Arc<LinkStats>,
) {
    while let Some((channel, payload)) = queued.recv().await {
        let first_try = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let sent: redis::RedisResult<i64> = connection.publish(&channel, &payload).await;
            match sent {
                Ok(_) => break,
                Err(err) if first_try.elapsed() >= RETRY_FOR => {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "could not publish an event to Redis; dropped");
                    break;
                }
                Err(err) => {
                    tracing::debug!(error = %err, "could not publish an event to Redis; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        stats.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn listen_loop(
    client: redis::Client,
    prefix: String,
    origin: Uuid,
    hub: Arc<Hub>,
    mut requests: mpsc::UnboundedReceiver<Topic>,
    stats: Arc<LinkStats>,
) {
    let mut backoff = Duration::from_millis(200);
    // Set once the first attempt is over (failed, or connected and then lost): every later
    // subscribe heals.
    let mut interrupted = false;
    loop {
        match client.get_async_pubsub().await {
            Ok(pubsub) => {
                let (mut sink, mut stream) = pubsub.split();
                while requests.try_recv().is_ok() {} // all active topics are subscribed below
                let mut ok = true;
                for topic in hub.active_topics() {
                    ok &= sink.subscribe(topic.channel(&prefix)).await.is_ok();
                }
                if ok {
                    if interrupted {
                        // Whatever other instances published while the link was down is lost
                        // to this one: every local subscriber heals from the database.
                        hub.deliver_everywhere(Event::LinkRestored);
                        tracing::info!("reconnected to Redis; subscriptions restored and healed");
                    }
                    stats.subscribed.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(200);
                    let every = Duration::from_secs(5);
                    let mut health =
                        tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                    loop {
                        tokio::select! {
                            request = requests.recv() => match request {
                                Some(topic) => {
                                    if sink.subscribe(topic.channel(&prefix)).await.is_err() {
                                        break;
                                    }
                                }
                                None => return,
                            },
                            message = stream.next() => match message {
                                Some(message) => dispatch(&hub, &stats, origin, message.get_payload_bytes()),
                                None => break,
                            },
                            _ = health.tick() => {
                                // In subscribed mode PING answers with an array, so take any value.
                                let pong: redis::RedisResult<redis::Value> = sink.ping().await;
                                if pong.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                }
                stats.subscribed.store(false, Ordering::Relaxed);
                tracing::warn!("lost the Redis subscription; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "Redis unreachable; retrying"),
        }
        interrupted = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(3));
    }
}

fn dispatch(hub: &Hub, stats: &LinkStats, origin: Uuid, payload: &[u8]) {
    match serde_json::from_slice::<Incoming>(payload) {
        Ok(incoming) if incoming.origin != origin => {
            stats.received.fetch_add(1, Ordering::Relaxed);
            if let Some(sent) = incoming.sent_ms {
                stats.lag_ms.store(now_ms() - sent, Ordering::Relaxed);
            }
            hub.deliver(incoming.topic, Delivered::new(incoming.event));
        }
        Ok(_) => {} // published here, already delivered locally
        Err(err) => tracing::warn!(error = %err, "ignoring an undecodable event from Redis"),
    }
}
