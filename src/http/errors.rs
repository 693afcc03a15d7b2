//! `AppError` as a REST answer: its status, `{"detail": …, "code": …}` and `Retry-After` when it
//! says. This is the REST edge, so an internal error or an outage is logged here, once, inside
//! the request's span.
use axum::{
    Json,
    http::header::RETRY_AFTER,
    response::{IntoResponse, Response},
};

use crate::error::AppError;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log();
        let body = serde_json::json!({ "detail": self.message(), "code": self.code() });
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(RETRY_AFTER, seconds.into());
        }
        response
    }
}
