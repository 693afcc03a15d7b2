//! `POST /graphql` runs operations (JSON, batched JSON); `GET /graphql` serves GraphiQL, or
//! upgrades to the subscription WebSocket when the client asks for one; `/schema.graphql` is the SDL.
use async_graphql::http::MultipartOptions;
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
    let limit = state.app.config.max_body_bytes;
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(err) => return body_error(err, limit).into_response(),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request = match async_graphql::http::receive_batch_body(
        content_type,
        async_graphql::futures_util::io::Cursor::new(bytes),
        MultipartOptions::default().max_num_files(0),
    )
    .await
    {
        Ok(request) => request,
        Err(err) => return request_error(&err.to_string()),
    };
    let auth = auth::from_headers(&state.app, &headers).await;
    let loaders = crate::graphql::loaders::per_request(state.app.clone());
    let response = state
        .schema
        .execute_batch(request.data(auth).data(loaders))
        .await;
    async_graphql_axum::GraphQLResponse::from(response).into_response()
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

/// A request that is not GraphQL at all: 400 with a GraphQL-shaped error, as clients expect.
fn request_error(message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": "BAD_USER_INPUT" } }]
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}
