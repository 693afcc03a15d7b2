//! `GET /metrics`: what an operator watches, in the Prometheus text format (`crate::metrics`):
//! GraphQL operations, subscriptions and deliveries, uploads, SQL statements (the benchmark
//! harness counts a request's statements from outside the process), open sockets, the database
//! pool and the bus link.
use axum::{extract::State, http::header, response::IntoResponse};

use super::HttpState;
use crate::metrics::{BusSnapshot, Snapshot};

pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let app = &state.app;
    let (pool_size, pool_idle) = crate::db::pool_use(&app.db);
    let body = app.metrics.render(Snapshot {
        sockets: state.sockets.open(),
        pool_size,
        pool_idle,
        bus: app.bus.redis().map(|link| {
            let stats = link.stats();
            BusSnapshot {
                up: stats.subscribed(),
                pending: stats.pending(),
                dropped: stats.dropped(),
                lag_ms: stats.lag_ms(),
                received: stats.received(),
            }
        }),
        filled: app
            .bus
            .stats()
            .filled
            .load(std::sync::atomic::Ordering::Relaxed),
        sql_statements: app.sql_statement_count(),
    });
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
