//! `/graphql` as GraphQL over HTTP says: `POST` runs operations (JSON, batched JSON, or the
//! multipart upload request); `GET` runs queries from the URL (mutations refused with 405, so GET
//! stays safe), serves GraphiQL to browsers (`Accept: text/html`), or upgrades to the subscription
//! WebSocket. The media type is negotiated (`accept`), parameters are checked before anything
//! runs (`params`), persisted queries are resolved (`persisted`), and answers carry the status the
//! spec asks for (`render`). `/schema.graphql` is the SDL.
mod accept;
mod params;
pub mod persisted;
mod render;

use async_graphql::{BatchRequest, Request, parser::types::OperationType};
use axum::{
    body::Body,
    extract::{FromRequestParts, State, WebSocketUpgrade},
    http::{HeaderMap, header},
    response::{IntoResponse, Response},
};

use super::{HttpState, auth, errors::graphql_refusal, multipart, playground, ws};
use crate::{
    auth::AuthState,
    error::AppError,
    graphql::{budget, partial::Executed},
    limits::ClientIp,
};
use params::{Params, Sent};

/// A request's operations, each ready to run or already answered (a request error).
enum Entries {
    Single(Box<Result<Request, Answer>>),
    Batch(Vec<Result<Request, Answer>>),
}
use render::Answer;

/// Executes a GraphQL request (or batch) as the caller named by the `Authorization` header.
/// The whole request is measured against one budget before any of it runs, and batch entries run
/// one after another, so a batch costs what its entries cost in sequence, never more at once.
pub async fn post(
    State(state): State<HttpState>,
    client: ClientIp,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let media = accept::negotiate(&headers).media;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let kind = match content_type.as_deref().map(body_kind) {
        Some(Some(kind)) => kind,
        _ => {
            return graphql_refusal(AppError::UnsupportedMediaType(
                "send the operation as `Content-Type: application/json` (or \
                 multipart/form-data for uploads)"
                    .into(),
            ));
        }
    };
    let app = &state.app;
    let auth = auth::from_headers(app, &headers).await;
    // A token that could not be checked (the database is unreachable) fails the whole request
    // with 503 and `Retry-After`, rather than running as anonymous or answering UNAUTHENTICATED.
    if let AuthState::Unverified(err) = auth {
        return graphql_refusal(err);
    }
    let entries = match kind {
        BodyKind::Multipart => {
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
                Ok(BatchRequest::Single(request)) => Entries::Single(Box::new(Ok(request))),
                Ok(BatchRequest::Batch(requests)) => {
                    Entries::Batch(requests.into_iter().map(Ok).collect())
                }
                Err(err) => return err.into_response(),
            }
        }
        BodyKind::Json => {
            let limit = app.config.max_body_bytes;
            let bytes = match axum::body::to_bytes(body, limit).await {
                Ok(bytes) => bytes,
                Err(err) => return body_error(err, limit).into_response(),
            };
            match params::from_json(&bytes) {
                Ok(Sent::Single(params)) => match prepare(&state, params).await {
                    Ok(request) => Entries::Single(Box::new(Ok(request))),
                    Err(unready) => return unready.into_response(media),
                },
                Ok(Sent::Batch(list)) => {
                    let mut prepared = Vec::with_capacity(list.len());
                    for params in list {
                        prepared.push(prepare(&state, params).await.map_err(Unready::into_answer));
                    }
                    Entries::Batch(prepared)
                }
                Err(message) => return graphql_refusal(unnamed_bad_input(message)),
            }
        }
    };
    match entries {
        Entries::Single(entry) => {
            let request = match *entry {
                Ok(request) => request,
                Err(answer) => return render::single(media, answer),
            };
            let request = match within_budget(&state, request) {
                Ok(request) => request,
                Err(refused) => return graphql_refusal(refused),
            };
            let loaders = crate::graphql::loaders::per_request(app.clone());
            render::single(media, run(&state, request, auth, loaders, client).await)
        }
        Entries::Batch(entries) => {
            let mut answers: Vec<Option<Answer>> = Vec::new();
            answers.resize_with(entries.len(), || None);
            let (mut places, mut requests) = (Vec::new(), Vec::new());
            for (i, entry) in entries.into_iter().enumerate() {
                match entry {
                    Ok(request) => {
                        places.push(i);
                        requests.push(request);
                    }
                    Err(answer) => answers[i] = Some(answer),
                }
            }
            let mut batch = BatchRequest::Batch(requests);
            if let Err(err) = budget::check_batch(
                &budget::Budget::from_config(&app.config),
                &state.documents,
                &mut batch,
            ) {
                return graphql_refusal(unnamed_bad_input(err.message));
            }
            let requests = match batch {
                BatchRequest::Batch(requests) => requests,
                BatchRequest::Single(request) => vec![request],
            };
            let loaders = crate::graphql::loaders::per_request(app.clone());
            for (i, request) in places.into_iter().zip(requests) {
                answers[i] =
                    Some(run(&state, request, auth.clone(), loaders.clone(), client).await);
            }
            let answers: Vec<Answer> = answers.into_iter().flatten().collect();
            render::batch(media, &answers)
        }
    }
}

/// `request` measured against the request budget (as a batch of one), or why it is refused.
fn within_budget(state: &HttpState, request: Request) -> Result<Request, AppError> {
    let mut batch = BatchRequest::Single(request);
    if let Err(err) = budget::check_batch(
        &budget::Budget::from_config(&state.app.config),
        &state.documents,
        &mut batch,
    ) {
        return Err(unnamed_bad_input(err.message));
    }
    let BatchRequest::Single(request) = batch else {
        unreachable!("a single request stays single")
    };
    Ok(request)
}

/// GraphiQL for browsers; the subscription socket for WebSocket clients that connect to
/// `/graphql`; queries from the URL for everyone else.
pub async fn get(
    State(state): State<HttpState>,
    client: ClientIp,
    request: axum::extract::Request,
) -> Response {
    let wants_upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let (mut parts, _body) = request.into_parts();
    if wants_upgrade {
        return match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(upgrade) => ws::accept(state, &mut parts, upgrade).await,
            Err(rejection) => rejection.into_response(),
        };
    }
    let accepted = accept::negotiate(&parts.headers);
    let media = accepted.media;
    if accepted.html {
        if state.app.config.graphiql {
            return playground::response();
        }
        if parts.uri.query().is_none() {
            return AppError::NotFound("GraphiQL is turned off on this server".into())
                .into_response();
        }
    }
    let params = match params::from_query_string(parts.uri.query()) {
        Ok(params) => params,
        Err(message) => return graphql_refusal(unnamed_bad_input(message)),
    };
    let app = &state.app;
    let auth = auth::from_headers(app, &parts.headers).await;
    if let AuthState::Unverified(err) = auth {
        return graphql_refusal(err);
    }
    let request = match prepare(&state, params).await {
        Ok(request) => request,
        Err(unready) => return unready.into_response(media),
    };
    let mut request = match within_budget(&state, request) {
        Ok(request) => request,
        Err(refused) => return graphql_refusal(refused),
    };
    match operation_type(&mut request) {
        Some(OperationType::Mutation) => {
            return render::method_not_allowed(
                media,
                "mutations are sent with POST; GET only runs queries",
            );
        }
        Some(OperationType::Subscription) => {
            return render::method_not_allowed(
                media,
                "subscriptions run over the WebSocket at /graphql/ws",
            );
        }
        _ => {}
    }
    let loaders = crate::graphql::loaders::per_request(app.clone());
    render::single(media, run(&state, request, auth, loaders, client).await)
}

/// Why a request cannot run.
enum Unready {
    /// A persisted query that is unknown or does not match: a GraphQL request error.
    Answered(Box<Answer>),
    /// No document at all: the parameters are invalid (400 whatever the media type).
    NoQuery(String),
}

impl Unready {
    fn into_answer(self) -> Answer {
        match self {
            Self::Answered(answer) => *answer,
            Self::NoQuery(message) => Answer::refused(render::error(&message, "BAD_USER_INPUT")),
        }
    }

    fn into_response(self, media: accept::Media) -> Response {
        match self {
            Self::Answered(answer) => render::single(media, *answer),
            Self::NoQuery(message) => graphql_refusal(unnamed_bad_input(message)),
        }
    }
}

/// Resolves a persisted query and builds the request.
async fn prepare(state: &HttpState, mut params: Params) -> Result<Request, Unready> {
    state
        .persisted
        .resolve(&mut params)
        .await
        .map_err(|error| Unready::Answered(Box::new(Answer::refused(error))))?;
    params.into_request().map_err(Unready::NoQuery)
}

/// Runs one operation as the caller.
async fn run(
    state: &HttpState,
    request: Request,
    auth: AuthState,
    loaders: std::sync::Arc<crate::graphql::loaders::Loaders>,
    client: ClientIp,
) -> Answer {
    let executed = Executed::default();
    let request = request
        .data(auth)
        .data(loaders)
        .data(client)
        .data(executed.clone());
    let response = state.schema.execute(request).await;
    Answer {
        response,
        executed: executed.get(),
    }
}

/// The kind of the operation a request names (None when its document does not parse, or names
/// no operation it has: execution reports that).
fn operation_type(request: &mut Request) -> Option<OperationType> {
    use async_graphql::parser::types::DocumentOperations;
    let name = request.operation_name.clone();
    let document = request.parsed_query().ok()?;
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name.as_str())?,
        (DocumentOperations::Multiple(ops), None) => {
            // Without a name only a document of one operation runs; any mutation in a
            // document of several is reason enough to refuse it on GET.
            return ops
                .values()
                .map(|op| op.node.ty)
                .find(|ty| *ty != OperationType::Query)
                .or(Some(OperationType::Query));
        }
    };
    Some(operation.node.ty)
}

#[derive(Clone, Copy)]
enum BodyKind {
    Json,
    Multipart,
}

/// What a `POST` body is, by its `Content-Type`; None for a type this endpoint does not read.
fn body_kind(content_type: &str) -> Option<BodyKind> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "application/graphql-response+json" => Some(BodyKind::Json),
        "multipart/form-data" => Some(BodyKind::Multipart),
        _ => None,
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
