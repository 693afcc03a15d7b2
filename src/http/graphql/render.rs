//! GraphQL responses as HTTP answers, by the rules of GraphQL over HTTP: the negotiated media
//! type with `charset=utf-8`; a request that never executed (it did not parse or validate, its
//! variables did not coerce, its persisted query is unknown) has no `data` entry, and under
//! `application/graphql-response+json` it is a 400; everything that executed is a 200, whatever
//! its errors, since `data` then says what worked.
use std::collections::BTreeMap;

use async_graphql::{ServerError, Value};
use axum::{
    body::Body,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::accept::Media;

/// One operation's result.
pub struct Answer {
    pub response: async_graphql::Response,
    /// Whether execution began (false: a request error; the body has no `data`).
    pub executed: bool,
}

impl Answer {
    /// A request error: the operation never ran.
    pub fn refused(error: ServerError) -> Self {
        Self {
            response: async_graphql::Response::from_errors(vec![error]),
            executed: false,
        }
    }
}

/// A response body: `data` only when the operation executed.
#[derive(Serialize)]
struct Wire<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

impl<'a> From<&'a Answer> for Wire<'a> {
    fn from(answer: &'a Answer) -> Self {
        Self {
            data: answer.executed.then_some(&answer.response.data),
            errors: &answer.response.errors,
            extensions: &answer.response.extensions,
        }
    }
}

/// One operation's answer.
pub fn single(media: Media, answer: Answer) -> Response {
    let status = if !answer.executed && media == Media::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut response = body(media, status, serde_json::to_vec(&Wire::from(&answer)));
    if answer.response.is_ok()
        && let Some(value) = answer.response.cache_control.value()
        && let Ok(value) = HeaderValue::from_str(&value)
    {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response
        .headers_mut()
        .extend(answer.response.http_headers.clone());
    response
}

/// A batch's answers, in order (always 200: each entry says how it went).
pub fn batch(media: Media, answers: &[Answer]) -> Response {
    let wire: Vec<Wire> = answers.iter().map(Wire::from).collect();
    body(media, StatusCode::OK, serde_json::to_vec(&wire))
}

/// A GraphQL operation that may not run over `GET` (a mutation would make a link or an image
/// tag able to change things: GET must stay safe).
pub fn method_not_allowed(media: Media, message: &str) -> Response {
    let answer = Answer::refused(error(message, "METHOD_NOT_ALLOWED"));
    let mut response = body(
        media,
        StatusCode::METHOD_NOT_ALLOWED,
        serde_json::to_vec(&Wire::from(&answer)),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// A GraphQL error with a code.
pub fn error(message: &str, code: &str) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

fn body(media: Media, status: StatusCode, bytes: serde_json::Result<Vec<u8>>) -> Response {
    match bytes {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, media.content_type())],
            Body::from(bytes),
        )
            .into_response(),
        Err(err) => crate::error::AppError::internal(err).into_response(),
    }
}
