//! `POST /graphql` runs operations (JSON, batched JSON); `GET /graphql` serves GraphiQL, or
//! upgrades to the subscription WebSocket when the client asks for one; `/schema.graphql` is the SDL.
use async_graphql::{BatchRequest, BatchResponse, http::MultipartOptions};
use axum::{
    body::Body,
    extract::{FromRequestParts, Request, State, WebSocketUpgrade},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};

use super::{HttpState, auth, errors::graphql_refusal, multipart, playground, ws};
use crate::{error::AppError, graphql::budget};

/// Executes a GraphQL request (or batch) as the caller named by the `Authorization` header.
/// The whole request is measured against one budget before any of it runs, and batch entries run
/// one after another, so a batch costs what its entries cost in sequence, never more at once.
pub async fn post(
    State(state): State<HttpState>,
    client: crate::limits::ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let is_multipart = content_type
        .as_deref()
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    let app = &state.app;
    let auth = auth::from_headers(app, &headers).await;
    // A token that could not be checked (the database is unreachable) fails the whole request
    // with 503 and `Retry-After`, rather than running as anonymous or answering UNAUTHENTICATED.
    if let crate::auth::AuthState::Unverified(err) = auth {
        return graphql_refusal(err);
    }
    let mut batch = if is_multipart {
        // Only signed-in callers upload: refuse before a single file byte is read.
        if let Err(err) = auth.viewer() {
            return graphql_refusal(err);
        }
        let limits = multipart::Limits {
            json: app.config.max_body_bytes,
            file: app.config.max_upload_bytes.max(app.config.max_music_bytes),
        };
        let content_type = content_type.unwrap_or_default();
        match multipart::receive(&content_type, body, limits, app.storage.spool_dir()).await {
            Ok(batch) => batch,
            Err(err) => return err.into_response(),
        }
    } else {
        let limit = app.config.max_body_bytes;
        let bytes = match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => bytes,
            Err(err) => return body_error(err, limit).into_response(),
        };
        let parsed = async_graphql::http::receive_batch_body(
            content_type,
            async_graphql::futures_util::io::Cursor::new(bytes),
            MultipartOptions::default().max_num_files(0),
        )
        .await;
        match parsed {
            Ok(batch) => batch,
            Err(err) => return graphql_refusal(unnamed_bad_input(err.to_string())),
        }
    };
    if let Err(err) = budget::check_batch(&budget::Budget::from_config(&app.config), &mut batch) {
        return graphql_refusal(unnamed_bad_input(err.message));
    }
    let loaders = crate::graphql::loaders::per_request(app.clone());
    let response = match batch {
        BatchRequest::Single(request) => {
            let request = request.data(auth).data(loaders).data(client);
            BatchResponse::Single(state.schema.execute(request).await)
        }
        BatchRequest::Batch(requests) => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                let request = request
                    .data(auth.clone())
                    .data(loaders.clone())
                    .data(client);
                responses.push(state.schema.execute(request).await);
            }
            BatchResponse::Batch(responses)
        }
    };
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
        if !state.app.config.graphiql {
            return AppError::NotFound("GraphiQL is turned off on this server".into())
                .into_response();
        }
        return playground::response();
    }
    let (mut parts, _body) = request.into_parts();
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => ws::accept(state, &mut parts, upgrade).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// The schema in SDL, for code generators (not published when introspection is off).
pub async fn sdl(State(state): State<HttpState>) -> Response {
    if !state.app.config.introspection {
        return AppError::NotFound("introspection is turned off on this server".into())
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        crate::graphql::sdl(),
    )
        .into_response()
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

/// Bad input that is the request as a whole, not one named field.
fn unnamed_bad_input(message: String) -> AppError {
    AppError::BadInput {
        field: None,
        message,
    }
}
