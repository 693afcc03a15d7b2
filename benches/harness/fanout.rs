//! Scenario 2, fan-out: one chat with 100, 1,000 and 5,000 subscribed WebSocket clients and
//! messages sent at a steady rate; deliveries per second and send-to-receive latency, against
//! the minimal tokio-tungstenite broadcast server. Scenario 5 runs the same measurement with
//! the sender on instance A and the subscribers on instance B (PostgreSQL or one SQLite file,
//! plus Redis), against the same deployment with everything on A.
use std::{
    net::{IpAddr, Ipv4Addr},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::json;
use tokio::sync::{Mutex, watch};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use crate::{
    Options,
    baseline::BaselineServer,
    client::{self, Api, Tally, User, Ws, now_ns, stamped},
    db::Backend,
    report::{Better, Report, Scope, percentile},
    server::{Goftgu, Launch},
};

/// Users the subscriber sockets log in as (round robin).
const SUBSCRIBER_USERS: usize = 10;
/// Loopback source addresses the client sockets spread over.
const SOURCES: u8 = 8;

/// A source address for the `i`-th socket: 127.0.0.1 … 127.0.0.8.
pub fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % SOURCES as usize) as u8))
}

/// Where messages come from.
#[derive(Clone)]
pub enum Publisher {
    Goftgu { api: Api, sender: User, chat: Uuid },
    Baseline(Arc<Mutex<futures_util::stream::SplitSink<Ws, Message>>>),
}

impl Publisher {
    pub async fn baseline(server: &BaselineServer) -> anyhow::Result<Self> {
        let mut ws = client::connect(&server.ws_url(), source(0)).await?;
        client::init(&mut ws, "none").await?;
        let (sink, _) = ws.split();
        Ok(Publisher::Baseline(Arc::new(Mutex::new(sink))))
    }

    pub async fn publish(&self, phase: char) -> anyhow::Result<()> {
        match self {
            Publisher::Goftgu { api, sender, chat } => {
                api.send(sender, *chat, &stamped(phase)).await
            }
            Publisher::Baseline(sink) => {
                let frame = json!({ "type": "publish", "content": stamped(phase) });
                sink.lock()
                    .await
                    .send(Message::Text(frame.to_string().into()))
                    .await?;
                Ok(())
            }
        }
    }
}

/// A goftgu deployment ready for fan-out: a sender and subscriber users in one public room.
pub struct Room {
    pub sender: User,
    pub subscribers: Vec<User>,
    pub chat: Uuid,
}

impl Room {
    pub async fn create(api: &Api) -> anyhow::Result<Self> {
        let sender = api.register("fanout_sender").await?;
        let mut subscribers = Vec::new();
        for i in 0..SUBSCRIBER_USERS {
            subscribers.push(api.register(&format!("fanout_reader{i}")).await?);
        }
        let chat = api.room_with(&sender, &subscribers).await?;
        Ok(Room {
            sender,
            subscribers,
            chat,
        })
    }

    /// Sends as the room's sender through `api`.
    pub fn publisher(&self, api: &Api) -> Publisher {
        Publisher::Goftgu {
            api: api.clone(),
            sender: self.sender.clone(),
            chat: self.chat,
        }
    }

    pub fn tokens(&self) -> Vec<String> {
        self.subscribers.iter().map(|u| u.token.clone()).collect()
    }
}

/// Subscribed sockets, each read by its own listener task.
pub struct Subscribers {
    pub count: usize,
    pub tally: Arc<Tally>,
    stop: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<anyhow::Result<Vec<u32>>>,
}

impl Subscribers {
    /// Opens `count` sockets to `url` (64 handshakes at a time), each subscribed to `chat` with
    /// the selection every subscriber shares (`client::CHAT_EVENTS`).
    pub async fn open(
        url: &str,
        tokens: &[String],
        chat: Uuid,
        count: usize,
    ) -> anyhow::Result<Self> {
        Self::open_with(url, tokens, chat, count, |_| {
            client::CHAT_EVENTS.to_string()
        })
        .await
    }

    /// Opens `count` sockets as `open` does, socket `i` subscribed with document `query(i)`.
    pub async fn open_with(
        url: &str,
        tokens: &[String],
        chat: Uuid,
        count: usize,
        query: impl Fn(usize) -> String,
    ) -> anyhow::Result<Self> {
        let tally = Arc::new(Tally::default());
        let (stop, stopped) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        let mut sockets = stream::iter(0..count)
            .map(|i| {
                let token = tokens[i % tokens.len()].clone();
                let query = query(i);
                async move {
                    let mut ws = client::connect(url, source(i)).await?;
                    client::init(&mut ws, &token).await?;
                    client::subscribe_with(&mut ws, chat, &query).await?;
                    anyhow::Ok(ws)
                }
            })
            .buffer_unordered(64);
        while let Some(ws) = sockets.next().await {
            let ws = ws.context("open subscriber socket")?;
            tasks.spawn(client::listen(ws, tally.clone(), stopped.clone()));
        }
        Ok(Subscribers {
            count,
            tally,
            stop,
            tasks,
        })
    }

    /// Publishes warm-up messages until every subscriber has received one.
    pub async fn wait_live(&self, publisher: &Publisher) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while (self.tally.live.load(Ordering::Relaxed) as usize) < self.count {
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {}/{} subscribers received anything in 120 s",
                self.tally.live.load(Ordering::Relaxed),
                self.count
            );
            publisher.publish('w').await?;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(())
    }

    /// Closes every socket and returns all measured latencies (µs).
    pub async fn close(mut self) -> anyhow::Result<Vec<u32>> {
        self.stop.send(true).ok();
        let mut all = Vec::new();
        while let Some(result) = self.tasks.join_next().await {
            all.extend(result??);
        }
        Ok(all)
    }
}

/// What one fan-out measurement saw.
pub struct Fanout {
    pub deliveries_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub lost: u64,
    pub expected: u64,
}

/// Messages a measurement sends at least. Latencies are counted per delivery, but the deliveries
/// of one message share its fate (a slow send delays all of them): with 5,000 subscribers at the
/// light load (2 messages/s), 5 s would send 10 messages and the p99 would be the tail of the
/// slowest one, on both sides.
const MIN_MESSAGES: f64 = 50.0;

/// Warm-up, then `rate` messages/s for `duration` (longer when that would send fewer than
/// `MIN_MESSAGES`), then up to 15 s for the last deliveries.
pub async fn measure(
    publisher: &Publisher,
    subscribers: Subscribers,
    rate: f64,
    warm: Duration,
    duration: Duration,
) -> anyhow::Result<Fanout> {
    subscribers.wait_live(publisher).await?;
    steady(publisher, 'w', rate, warm).await?;
    let first_send = now_ns();
    let duration = duration.max(Duration::from_secs_f64(MIN_MESSAGES / rate));
    let sent = steady(publisher, 'm', rate, duration).await?;
    let expected = sent * subscribers.count as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(15);
    while subscribers.tally.delivered.load(Ordering::Relaxed) < expected
        && Instant::now() < drain_deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered = subscribers.tally.delivered.load(Ordering::Relaxed);
    let window_s = (subscribers
        .tally
        .last_ns
        .load(Ordering::Relaxed)
        .saturating_sub(first_send)) as f64
        / 1e9;
    let mut latencies = subscribers.close().await?;
    Ok(Fanout {
        deliveries_per_s: delivered as f64 / window_s.max(1e-9),
        p50_ms: percentile(&mut latencies, 50.0) / 1000.0,
        p99_ms: percentile(&mut latencies, 99.0) / 1000.0,
        lost: expected.saturating_sub(delivered),
        expected,
    })
}

/// Publishes at `rate` per second for `duration` (sends overlap when one is slow); returns how
/// many were sent.
async fn steady(
    publisher: &Publisher,
    phase: char,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<u64> {
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..total {
        ticker.tick().await;
        let publisher = publisher.clone();
        sends.spawn(async move { publisher.publish(phase).await });
    }
    while let Some(result) = sends.join_next().await {
        result??;
    }
    Ok(total)
}

/// Messages per second for `subscribers` sockets so that `deliveries` per second are offered.
fn rate_for(subscribers: usize, deliveries: f64) -> f64 {
    (deliveries / subscribers as f64).clamp(2.0, 200.0)
}

/// Offered deliveries per second: a heavy load (past what one core of goftgu moves, so the
/// figure is its capacity) and a light one (latency without queueing).
const LOADS: [(&str, f64); 2] = [("heavy", 40_000.0), ("light", 10_000.0)];

fn timing(options: &Options) -> (Duration, Duration) {
    if options.quick {
        (Duration::from_millis(500), Duration::from_secs(2))
    } else {
        (Duration::from_secs(1), Duration::from_secs(5))
    }
}

pub async fn run(options: &Options, backend: &Backend, report: &mut Report) -> anyhow::Result<()> {
    let sizes: &[usize] = if options.quick {
        &[100, 500]
    } else {
        &[100, 1_000, 5_000]
    };
    let shared = |_| client::CHAT_EVENTS.to_string();
    run_sizes(options, backend, report, "2 fan-out", sizes, shared).await
}

/// Scenario 2 or 2b: for each size and load, `size` goftgu sockets (socket `i` subscribed with
/// `query(i)`) against as many baseline sockets, one fresh deployment for the scenario.
async fn run_sizes(
    options: &Options,
    backend: &Backend,
    report: &mut Report,
    scenario: &'static str,
    sizes: &[usize],
    query: impl Fn(usize) -> String + Copy,
) -> anyhow::Result<()> {
    let (warm, duration) = timing(options);
    let dir = tempfile::tempdir()?;
    let url = backend.fresh(dir.path()).await?;
    let (launch, deployment) = Launch::live(backend, url, dir.path().to_path_buf());
    let server = Goftgu::start(&launch).await?;
    let api = Api::new(server.graphql_url());
    let room = Room::create(&api).await?;
    let goftgu_publisher = room.publisher(&api);
    let baseline = BaselineServer::start().await?;
    let baseline_publisher = Publisher::baseline(&baseline).await?;
    let scope = Scope {
        scenario,
        backend: deployment,
        baseline_is: "bare tokio-tungstenite broadcast",
    };
    for &size in sizes {
        for (load, deliveries) in LOADS {
            let rate = rate_for(size, deliveries);
            let subs =
                Subscribers::open_with(&server.ws_url(), &room.tokens(), room.chat, size, query)
                    .await?;
            let ours = measure(&goftgu_publisher, subs, rate, warm, duration).await?;
            let subs =
                Subscribers::open(&baseline.ws_url(), &["none".into()], room.chat, size).await?;
            let raw = measure(&baseline_publisher, subs, rate, warm, duration).await?;
            let case = format!("{size} subscribers, {load}: {rate:.0} msg/s");
            push_rows(report, &scope, &case, &ours, &raw);
        }
    }
    Ok(())
}

fn push_rows(report: &mut Report, scope: &Scope, case: &str, ours: &Fanout, raw: &Fanout) {
    let note = |f: &Fanout| {
        if f.lost > 0 {
            format!("{} of {} deliveries missing", f.lost, f.expected)
        } else {
            String::new()
        }
    };
    let lost = [note(ours), note(raw)]
        .iter()
        .zip(["goftgu", "baseline"])
        .filter(|(n, _)| !n.is_empty())
        .map(|(n, who)| format!("{who}: {n}"))
        .collect::<Vec<_>>()
        .join("; ");
    report.push(scope.row(
        case,
        "deliveries/s",
        "1/s",
        Better::Higher,
        ours.deliveries_per_s,
        raw.deliveries_per_s,
        lost,
    ));
    report.push(scope.row(
        case,
        "p50 latency",
        "ms",
        Better::Lower,
        ours.p50_ms,
        raw.p50_ms,
        "",
    ));
    report.push(scope.row(
        case,
        "p99 latency",
        "ms",
        Better::Lower,
        ours.p99_ms,
        raw.p99_ms,
        "",
    ));
}

/// Scenario 2b, the worst case of per-shape rendering: every subscriber's selection reads
/// `reactedByMe` (so it depends on the viewer) and is a document of its own (its operation
/// name), so no two sockets share a rendering: goftgu renders each event once per socket.
pub async fn run_per_viewer(
    options: &Options,
    backend: &Backend,
    report: &mut Report,
) -> anyhow::Result<()> {
    let size = if options.quick { 500 } else { 5_000 };
    let scenario = "2b fan-out, a selection per socket";
    run_sizes(
        options,
        backend,
        report,
        scenario,
        &[size],
        client::per_viewer_events,
    )
    .await
}

/// Scenario 5: sender on instance A, subscribers on instance B, against all on A.
pub async fn run_cluster(
    options: &Options,
    backend: &Backend,
    redis_url: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let size = if options.quick { 200 } else { 1_000 };
    // The light load: the hop through Redis shows, not queueing behind a saturated core.
    let rate = rate_for(size, LOADS[1].1);
    let (warm, duration) = timing(options);
    let dir = tempfile::tempdir()?;
    let url = backend.fresh(dir.path()).await?;
    let mut launch = Launch::new(url, dir.path().to_path_buf());
    launch.redis_url = Some(redis_url.to_string());
    let a = Goftgu::start(&launch).await?;
    let b = Goftgu::start(&launch).await?;
    let api = Api::new(a.graphql_url());
    let room = Room::create(&api).await?;
    let publisher = room.publisher(&api);
    let subs = Subscribers::open(&a.ws_url(), &room.tokens(), room.chat, size).await?;
    let one = measure(&publisher, subs, rate, warm, duration).await?;
    let subs = Subscribers::open(&b.ws_url(), &room.tokens(), room.chat, size).await?;
    let two = measure(&publisher, subs, rate, warm, duration).await?;
    let scope = Scope {
        scenario: "5 across instances",
        backend: backend.name(),
        baseline_is: "same, all on one instance",
    };
    let case = format!("{size} subscribers on B, sender on A, {rate:.0} msg/s");
    report.push(scope.row(
        &case,
        "p99 latency",
        "ms",
        Better::Lower,
        two.p99_ms,
        one.p99_ms,
        format!("extra p99 {:.2} ms", two.p99_ms - one.p99_ms),
    ));
    report.push(scope.row(
        &case,
        "p50 latency",
        "ms",
        Better::Lower,
        two.p50_ms,
        one.p50_ms,
        format!("extra p50 {:.2} ms", two.p50_ms - one.p50_ms),
    ));
    report.push(scope.row(
        &case,
        "deliveries/s",
        "1/s",
        Better::Higher,
        two.deliveries_per_s,
        one.deliveries_per_s,
        "",
    ));
    Ok(())
}
