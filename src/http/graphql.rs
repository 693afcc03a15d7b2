//! `POST /graphql` runs operations (JSON, batched JSON); `GET /graphql` serves GraphiQL, or
//! upgrades to the subscription WebSocket when the client asks for one; `/schema.graphql` is the SDL.
use async_graphql::{futures_util::TryStreamExt, http::MultipartOptions};
use axum::{
    body::Body,
    extract::{FromRequestParts, Request, State, WebSocketUpgrade},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use super::{HttpState, auth, playground, ws};
use crate::error::AppError;

/// Executes a GraphQL request (or batch) as the caller named by the `Authorization` header.
pub async fn post(State(state): State<HttpState>, headers: HeaderMap, body: Body) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_multipart = content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let config = &state.app.config;
    let parsed = if is_multipart {
        // Uploads stream through (async-graphql spools files to disk); never buffered whole.
        let largest = config.max_upload_bytes.max(config.max_music_bytes);
        let options = MultipartOptions::default()
            .max_file_size(largest)
            .max_num_files(MAX_UPLOAD_FILES);
        let limit = largest * MAX_UPLOAD_FILES + config.max_body_bytes;
        let reader = limited_stream(body, limit).into_async_read();
        async_graphql::http::receive_batch_body(content_type, reader, options).await
    } else {
        let limit = config.max_body_bytes;
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => bytes,
            Err(err) => return body_error(err, limit).into_response(),
        };
        async_graphql::http::receive_batch_body(
            content_type,
            async_graphql::futures_util::io::Cursor::new(bytes),
            MultipartOptions::default().max_num_files(0),
        )
        .await
    };
    let request = match parsed {
        Ok(request) => request,
        Err(async_graphql::ParseRequestError::PayloadTooLarge) => {
            return AppError::PayloadTooLarge("an uploaded file is too large".into())
                .into_response();
        }
        Err(err) if err.to_string().contains(TOO_LARGE) => {
            return AppError::PayloadTooLarge("request body is too large".into()).into_response();
        }
        Err(err) => return request_error(&err.to_string()),
    };
    let auth = auth::from_headers(&state.app, &headers).await;
    if let crate::auth::AuthState::Unverified(err) = auth {
        return unverified(err);
    }
    let loaders = crate::graphql::loaders::per_request(state.app.clone());
    let response = state
        .schema
        .execute_batch(request.data(auth).data(loaders))
        .await;
    async_graphql_axum::GraphQLResponse::from(response).into_response()
}

/// Most files in one GraphQL multipart request.
const MAX_UPLOAD_FILES: usize = 5;
const TOO_LARGE: &str = "request body exceeds the limit";

/// The body as a byte stream that fails once more than `limit` bytes arrived.
fn limited_stream(
    body: Body,
    limit: usize,
) -> impl async_graphql::futures_util::TryStream<Ok = bytes::Bytes, Error = std::io::Error> + Unpin
{
    use async_graphql::futures_util::StreamExt;
    let mut seen = 0usize;
    body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len();
        if seen > limit {
            return Err(std::io::Error::other(TOO_LARGE));
        }
        Ok(chunk)
    })
}

/// GraphiQL for browsers; the subscription socket for WebSocket clients that connect to `/graphql`.
pub async fn get_or_upgrade(State(state): State<HttpState>, request: Request) -> Response {
    let wants_upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants_upgrade {
        return Html(playground::page()).into_response();
    }
    let (mut parts, _body) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => ws::accept(state, &mut parts, upgrade).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// The schema in SDL, for code generators.
pub async fn sdl() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::graphql::sdl(),
    )
}

fn body_error(err: axum::Error, limit: usize) -> AppError {
    let too_large = std::error::Error::source(&err)
        .is_some_and(|source| source.is::<http_body_util::LengthLimitError>())
        || err.to_string().contains("length limit");
    if too_large {
        AppError::PayloadTooLarge(format!("request body exceeds {limit} bytes"))
    } else {
        AppError::bad_input("body", "could not read the request body")
    }
}

/// The token could not be checked (the database is unreachable): the whole request fails with
/// the error's status (503) and `Retry-After`, in GraphQL's shape with `extensions.retryAfter`,
/// rather than running as anonymous or answering UNAUTHENTICATED.
fn unverified(err: AppError) -> Response {
    let error = async_graphql::Error::from(err.clone());
    let body = serde_json::json!({
        "errors": [{ "message": error.message, "extensions": error.extensions }]
    });
    let mut response = (err.status(), axum::Json(body)).into_response();
    if let Some(seconds) = err.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// A request that is not GraphQL at all: 400 with a GraphQL-shaped error, as clients expect.
fn request_error(message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}
