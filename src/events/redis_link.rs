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
        atomic::{AtomicBool, Ordering},
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
}

#[derive(Deserialize)]
struct Incoming {
    origin: Uuid,
    topic: Topic,
    event: Event,
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
    /// Whether the subscription connection is up (for `/metrics`).
    subscribed: Arc<AtomicBool>,
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
        tokio::spawn(publish_loop(connection.clone(), queued));
        let subscribed = Arc::new(AtomicBool::new(false));
        tokio::spawn(listen_loop(
            client,
            prefix.clone(),
            origin,
            hub,
            requests,
            subscribed.clone(),
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                prefix,
                origin,
                outbox,
                commands,
                connection,
                subscribed,
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

    /// Whether events from other instances arrive now (the subscription connection is up).
    pub fn is_connected(&self) -> bool {
        self.inner.subscribed.load(Ordering::Relaxed)
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
        }) {
            Ok(payload) => payload,
            Err(err) => {
                tracing::error!(error = %err, "could not encode an event");
                return;
            }
        };
        let channel = topic.channel(&self.inner.prefix);
        if self.inner.outbox.try_send((channel, payload)).is_err() {
            tracing::warn!("Redis outbox full: an event was not shared with other instances");
        }
    }
}

async fn publish_loop(
    mut connection: ConnectionManager,
    mut queued: mpsc::Receiver<(String, String)>,
) {
    while let Some((channel, payload)) = queued.recv().await {
        let first_try = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let sent: redis::RedisResult<i64> = connection.publish(&channel, &payload).await;
            match sent {
                Ok(_) => break,
                Err(err) if first_try.elapsed() >= RETRY_FOR => {
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
    }
}

async fn listen_loop(
    client: redis::Client,
    prefix: String,
    origin: Uuid,
    hub: Arc<Hub>,
    mut requests: mpsc::UnboundedReceiver<Topic>,
    subscribed: Arc<AtomicBool>,
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
                    subscribed.store(true, Ordering::Relaxed);
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
                                Some(message) => dispatch(&hub, origin, message.get_payload_bytes()),
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
                subscribed.store(false, Ordering::Relaxed);
                tracing::warn!("lost the Redis subscription; reconnecting");
            }
            Err(err) => tracing::warn!(error = %err, "Redis unreachable; retrying"),
        }
        interrupted = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(3));
    }
}

fn dispatch(hub: &Hub, origin: Uuid, payload: &[u8]) {
    match serde_json::from_slice::<Incoming>(payload) {
        Ok(incoming) if incoming.origin != origin => {
            hub.deliver(incoming.topic, Delivered::new(incoming.event));
        }
        Ok(_) => {} // published here, already delivered locally
        Err(err) => tracing::warn!(error = %err, "ignoring an undecodable event from Redis"),
    }
}
