//! `AppError` as an HTTP answer: its status, `Retry-After` when it says, and a body in the
//! caller's shape: REST's `{"detail": …, "code": …}`, or GraphQL's `{"errors": [{message,
//! extensions}]}` for a `/graphql` request refused before it ran. This is the edge, so an
//! internal error or an outage is logged here, once, inside the request's span.
use axum::{
    Json,
    http::header::RETRY_AFTER,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::error::AppError;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = json!({ "detail": self.message(), "code": self.code() });
        answer(self, body)
    }
}

/// A GraphQL request refused before it ran (unreadable, over its budget, or its caller could not
/// be authenticated): the error's status, with the error as GraphQL clients read one.
pub fn graphql_refusal(err: AppError) -> Response {
    let error = async_graphql::Error::from(err.clone());
    let body = json!({ "errors": [{ "message": error.message, "extensions": error.extensions }] });
    answer(err, body)
}

fn answer(err: AppError, body: Value) -> Response {
    err.log();
    let mut response = (err.status(), Json(body)).into_response();
    if let Some(seconds) = err.retry_after() {
        response.headers_mut().insert(RETRY_AFTER, seconds.into());
    }
    response
}
