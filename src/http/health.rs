//! `GET /healthz`: 200 when the database answers, 503 otherwise (for load balancers).
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
