//! `GET /healthz` (liveness): 200 when the database answers, 503 otherwise. `GET /readyz`
//! (readiness, for load balancers): 200 `{"ready":true}` while serving; 503 `{"detail":
//! "draining"}` from the shutdown signal on, and 503 while the database is unreachable.
use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde_json::json;

use super::HttpState;

pub async fn healthz(State(state): State<HttpState>) -> impl IntoResponse {
    match state.app.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": "ok" })),
        ),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unreachable",
                             "detail": "database unreachable" })),
            )
        }
    }
}

pub async fn readyz(State(state): State<HttpState>) -> impl IntoResponse {
    let unready = |detail: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "detail": detail })),
        )
    };
    if state.app.drain.is_draining() {
        return unready("draining");
    }
    match state.app.db.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "ready": true }))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness: database unreachable");
            unready("database unreachable")
        }
    }
}
