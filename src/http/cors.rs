//! Cross-origin calls from browsers. Identity travels in bearer tokens, never cookies, so by
//! default any origin may call (`GOFTGU_CORS_ORIGINS=*`); a deployment can name its frontends
//! instead. The preflight names the request headers Apollo and urql send (a wildcard does not
//! cover `Authorization` under the Fetch standard) and is cached by the browser for a day.
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::Config;

/// How long a browser may reuse a preflight answer (browsers cap it lower: Chromium at 2 h).
const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The headers a browser may send cross-origin, beyond the always-safe ones.
const REQUEST_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    // Apollo Client: CSRF prevention on uploads, operation names, client awareness.
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "apollographql-client-name",
    "apollographql-client-version",
    // Tracing: a client may name its request.
    "x-request-id",
];

/// The CORS layer the configuration asks for.
pub fn layer(config: &Config) -> CorsLayer {
    let origins: Vec<&str> = config
        .cors_origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .collect();
    let allow_origin = if origins.is_empty() || origins.contains(&"*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers(
            REQUEST_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
        .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
        .max_age(MAX_AGE)
}
