//! One request, one trace: every request gets an id (the client's `x-request-id`, or a new UUID),
//! echoed in the response, and is served inside a span that carries it, so every log line of the
//! request (GraphQL's spans and internal errors included) names the same id.
use axum::{
    Router,
    http::{Extensions, Request},
};
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::TraceLayer,
};
use tracing::Span;

use super::HttpState;

/// `router` with request ids and the request span (outermost first: set the id, echo it, trace).
pub fn traced(router: Router<HttpState>) -> Router<HttpState> {
    router
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The span of one request: its id, method and path (not the query: download links carry their
/// signature there).
fn request_span<B>(request: &Request<B>) -> Span {
    tracing::info_span!(
        "request",
        id = request_id(request.extensions()),
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// The request's id as set by `SetRequestIdLayer` (`-` when it is not printable text).
pub fn request_id(extensions: &Extensions) -> &str {
    extensions
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
}
