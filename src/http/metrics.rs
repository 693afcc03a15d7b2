//! `GET /metrics`: counters in the Prometheus text format, for dashboards and the benchmark
//! harness (which counts the SQL statements a request costs from outside the process).
use axum::{extract::State, http::header, response::IntoResponse};

use super::HttpState;

pub async fn metrics(State(state): State<HttpState>) -> impl IntoResponse {
    let body = format!(
        "# HELP goftgu_sql_statements_total SQL statements this instance has sent to the database.\n\
         # TYPE goftgu_sql_statements_total counter\n\
         goftgu_sql_statements_total {}\n",
        state.app.sql_statement_count()
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
