//! What an operator watches, in one registry (prometheus-client): GraphQL operations by root
//! field and outcome with latency histograms, live subscriptions and what they deliver, upload
//! bytes, SQL statements and their latency. Gauges that mirror state kept elsewhere (open
//! sockets, the database pool, the bus link) are read when `/metrics` is scraped.
use std::{
    sync::atomic::{AtomicI64, AtomicU64},
    time::Duration,
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of one GraphQL root field call: `type` (Query, Mutation, Subscription), `field`, and
/// `outcome` (`ok` or the error's code). Root fields are the schema's, so the set is bounded.
pub type FieldLabels = Vec<(&'static str, String)>;

/// Latency histograms per root field (`type` and `field` labels).
pub type FieldHistograms = Family<Vec<(&'static str, String)>, Histogram, fn() -> Histogram>;

/// Latency buckets in seconds, 1 ms to 10 s.
const SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

fn seconds_histogram() -> Histogram {
    Histogram::new(SECONDS)
}

/// The instance's metrics.
pub struct Metrics {
    registry: Registry,
    /// GraphQL root field calls by type, field and outcome.
    pub operations: Family<FieldLabels, Counter>,
    /// GraphQL root field latency by type and field.
    pub operation_seconds: FieldHistograms,
    /// Subscriptions running now.
    pub subscriptions: Gauge,
    /// Events delivered to subscribers.
    pub deliveries: Counter,
    /// Live events rendered for a subscription shape (each rendering serves every socket of the
    /// shape: `deliveries` over `live_renders` is the sharing).
    pub live_renders: Counter,
    /// `ResyncRequired` notices sent.
    pub resyncs: Counter,
    /// Events subscribers missed (reported in those notices).
    pub dropped: Counter,
    /// Bytes received in uploads.
    pub upload_bytes: Counter,
    /// GraphQL documents served from the document cache or not, by `stage` (`parse`,
    /// `validation`) and `outcome` (`hit`, `miss`).
    pub documents_cached: Family<FieldLabels, Counter>,
    /// SQL statement latency.
    pub sql_seconds: Histogram,
    /// SQLite write transactions carrying sends (group commit).
    pub send_batches: Counter,
    /// Sends written by those transactions.
    pub batched_sends: Counter,
    /// Web Push deliveries by `outcome`.
    pub pushes: Family<FieldLabels, Counter>,
    /// Link preview fetches by `outcome`.
    pub previews: Family<FieldLabels, Counter>,
    /// Mirrors, set when scraped.
    sockets: Gauge<i64, AtomicI64>,
    pool_size: Gauge<i64, AtomicI64>,
    pool_idle: Gauge<i64, AtomicI64>,
    bus_up: Gauge<i64, AtomicI64>,
    bus_pending: Gauge<i64, AtomicI64>,
    bus_lag: Gauge<f64, AtomicU64>,
    bus_dropped: Counter<u64, AtomicU64>,
    bus_received: Counter<u64, AtomicU64>,
    filled: Counter<u64, AtomicU64>,
    sql_statements: Counter<u64, AtomicU64>,
}

/// The Redis link's figures, mirrored at scrape time.
pub struct BusSnapshot {
    pub up: bool,
    /// Events queued for other instances, not yet published.
    pub pending: u64,
    /// Events never shared (outbox full, Redis away past the retries).
    pub dropped: u64,
    /// Publication elsewhere to arrival here, of the latest event (ms).
    pub lag_ms: i64,
    /// Events received from other instances.
    pub received: u64,
}

/// The values mirrored from elsewhere at scrape time.
pub struct Snapshot {
    pub sockets: usize,
    pub pool_size: u32,
    pub pool_idle: usize,
    /// None: no bus link (one instance, in-process bus).
    pub bus: Option<BusSnapshot>,
    /// Messages live feeds filled in from the database after a gap.
    pub filled: u64,
    pub sql_statements: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("goftgu");
        let operations = Family::<FieldLabels, Counter>::default();
        registry.register(
            "graphql_operations",
            "GraphQL root fields resolved, by type, field and outcome (ok or the error code)",
            operations.clone(),
        );
        let operation_seconds = FieldHistograms::new_with_constructor(seconds_histogram);
        registry.register(
            "graphql_operation_seconds",
            "Time to resolve a GraphQL root field, by type and field",
            operation_seconds.clone(),
        );
        let subscriptions = Gauge::default();
        registry.register(
            "subscriptions",
            "GraphQL subscriptions running on this instance",
            subscriptions.clone(),
        );
        let deliveries = Counter::default();
        registry.register(
            "deliveries",
            "Events delivered to subscriptions",
            deliveries.clone(),
        );
        let live_renders = Counter::default();
        registry.register(
            "live_renders",
            "Live events rendered for a subscription shape, each shared by its sockets",
            live_renders.clone(),
        );
        let resyncs = Counter::default();
        registry.register(
            "resyncs",
            "ResyncRequired notices sent to subscriptions that fell behind",
            resyncs.clone(),
        );
        let dropped = Counter::default();
        registry.register(
            "dropped_events",
            "Events subscriptions missed (as reported by ResyncRequired)",
            dropped.clone(),
        );
        let upload_bytes = Counter::default();
        registry.register(
            "upload_bytes",
            "Bytes received in uploads",
            upload_bytes.clone(),
        );
        let sql_seconds = seconds_histogram();
        registry.register(
            "sql_statement_seconds",
            "Time the database took per SQL statement",
            sql_seconds.clone(),
        );
        let send_batches = Counter::default();
        registry.register(
            "send_batches",
            "SQLite write transactions carrying sends (group commit)",
            send_batches.clone(),
        );
        let batched_sends = Counter::default();
        registry.register(
            "batched_sends",
            "Sends written by those transactions (divided by send_batches: the mean batch size)",
            batched_sends.clone(),
        );
        let pushes = Family::<FieldLabels, Counter>::default();
        registry.register(
            "web_pushes",
            "Web Push deliveries by outcome: sent, online (not pushed: a live socket), stale \
             (the subscription went or changed hands), refused (a 4xx), gone (404 or 410, or an \
             endpoint no longer accepted: the subscription removed), retried (429, 5xx, no answer), given_up (the last attempt)",
            pushes.clone(),
        );
        let previews = Family::<FieldLabels, Counter>::default();
        registry.register(
            "link_previews",
            "Link preview fetches by outcome: ready (stored), cached (a recent fetch reused), \
             refused (an address or host not allowed), failed (no answer in time, not HTML, \
             an error, or nothing to show), stale (the message left the link while it was \
             fetched: nothing bound)",
            previews.clone(),
        );
        let sockets = Gauge::default();
        registry.register(
            "websockets",
            "WebSockets open on this instance",
            sockets.clone(),
        );
        let pool_size = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Connections the database pool holds",
            pool_size.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Pool connections not in use",
            pool_idle.clone(),
        );
        let bus_up = Gauge::default();
        registry.register(
            "bus_link_up",
            "1 while the Redis bus link is connected, 0 while it is down, -1 without Redis",
            bus_up.clone(),
        );
        let bus_pending = Gauge::default();
        registry.register(
            "bus_pending_events",
            "Events queued for other instances and not yet published to Redis",
            bus_pending.clone(),
        );
        let bus_lag = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "bus_lag_seconds",
            "From publication on another instance to arrival here, of the latest event",
            bus_lag.clone(),
        );
        let bus_dropped = Counter::default();
        registry.register(
            "bus_dropped_events",
            "Events never shared with other instances (outbox full, or Redis away past the retries)",
            bus_dropped.clone(),
        );
        let bus_received = Counter::default();
        registry.register(
            "bus_received_events",
            "Events received from other instances through Redis",
            bus_received.clone(),
        );
        let filled = Counter::default();
        registry.register(
            "filled_messages",
            "Messages live feeds filled in from the database after a gap",
            filled.clone(),
        );
        let documents_cached = Family::<FieldLabels, Counter>::default();
        registry.register(
            "documents_cached",
            "GraphQL documents parsed or validated (miss) or taken from the document cache (hit), \
             by stage (parse, validation) and outcome",
            documents_cached.clone(),
        );
        let sql_statements = Counter::default();
        registry.register(
            "sql_statements",
            "SQL statements this instance has sent to the database",
            sql_statements.clone(),
        );
        Self {
            registry,
            operations,
            operation_seconds,
            subscriptions,
            deliveries,
            live_renders,
            resyncs,
            dropped,
            upload_bytes,
            documents_cached,
            sql_seconds,
            send_batches,
            batched_sends,
            pushes,
            previews,
            sockets,
            pool_size,
            pool_idle,
            bus_up,
            bus_pending,
            bus_lag,
            bus_dropped,
            bus_received,
            filled,
            sql_statements,
        }
    }
}

impl Metrics {
    /// Records one root field call.
    pub fn operation(&self, kind: &'static str, field: &str, outcome: &str, took: Duration) {
        self.operations
            .get_or_create(&vec![
                ("type", kind.to_string()),
                ("field", field.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
        self.operation_seconds
            .get_or_create(&vec![
                ("type", kind.to_string()),
                ("field", field.to_string()),
            ])
            .observe(took.as_secs_f64());
    }

    /// The Prometheus text exposition, with the mirrored values as of now.
    pub fn render(&self, now: Snapshot) -> String {
        self.sockets.set(now.sockets as i64);
        self.pool_size.set(i64::from(now.pool_size));
        self.pool_idle.set(now.pool_idle as i64);
        match &now.bus {
            Some(bus) => {
                self.bus_up.set(i64::from(bus.up));
                self.bus_pending.set(bus.pending as i64);
                self.bus_lag.set(bus.lag_ms as f64 / 1000.0);
                catch_up(&self.bus_dropped, bus.dropped);
                catch_up(&self.bus_received, bus.received);
            }
            None => {
                self.bus_up.set(-1);
            }
        }
        catch_up(&self.filled, now.filled);
        catch_up(&self.sql_statements, now.sql_statements);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// Moves a mirrored counter up to the value its source holds now.
fn catch_up(counter: &Counter<u64, AtomicU64>, now: u64) {
    counter.inc_by(now.saturating_sub(counter.get()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_mirrors() {
        let metrics = Metrics::default();
        metrics.operation("Mutation", "sendMessage", "ok", Duration::from_millis(3));
        metrics.operation(
            "Mutation",
            "sendMessage",
            "FORBIDDEN",
            Duration::from_millis(1),
        );
        metrics.upload_bytes.inc_by(42);
        let text = metrics.render(Snapshot {
            sockets: 3,
            pool_size: 5,
            pool_idle: 4,
            bus: Some(BusSnapshot {
                up: true,
                pending: 2,
                dropped: 1,
                lag_ms: 1500,
                received: 9,
            }),
            filled: 4,
            sql_statements: 17,
        });
        for line in [
            "goftgu_graphql_operations_total{type=\"Mutation\",field=\"sendMessage\",outcome=\"ok\"} 1",
            "goftgu_graphql_operations_total{type=\"Mutation\",field=\"sendMessage\",outcome=\"FORBIDDEN\"} 1",
            "goftgu_graphql_operation_seconds_count{type=\"Mutation\",field=\"sendMessage\"} 2",
            "goftgu_upload_bytes_total 42",
            "goftgu_websockets 3",
            "goftgu_bus_link_up 1",
            "goftgu_bus_pending_events 2",
            "goftgu_bus_lag_seconds 1.5",
            "goftgu_bus_dropped_events_total 1",
            "goftgu_filled_messages_total 4",
            "goftgu_sql_statements_total 17",
        ] {
            assert!(text.contains(line), "{line} missing in:\n{text}");
        }
        // Mirrored counters follow the source without double counting.
        let text = metrics.render(Snapshot {
            sockets: 0,
            pool_size: 5,
            pool_idle: 5,
            bus: None,
            filled: 4,
            sql_statements: 20,
        });
        assert!(text.contains("goftgu_sql_statements_total 20"), "{text}");
        assert!(text.contains("goftgu_bus_link_up -1"), "{text}");
    }
}
