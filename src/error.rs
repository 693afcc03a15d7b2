//! One error type for the whole server. The domain returns `AppError`; transports map it to a
//! GraphQL error with a stable `extensions.code` or to an HTTP status with `{"detail": …}`.
//! Internal causes are logged here and never shown to clients.
use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};

/// Everything that can go wrong while serving a request.
///
/// Deliberately not `Display`: async-graphql converts any `Display` into an error without a code,
/// so keeping this type out of that blanket impl forces every resolver through `From` below.
#[derive(Clone, Debug)]
pub enum AppError {
    /// No valid credentials (missing, malformed, expired, revoked, or wrong password).
    Unauthenticated(String),
    /// Authenticated, but not allowed to do this.
    Forbidden(String),
    /// The thing does not exist (or the caller may not know that it does).
    NotFound(String),
    /// Input is invalid; `field` names the offending input field when there is one.
    BadInput {
        field: Option<String>,
        message: String,
    },
    /// The request conflicts with existing state (duplicate username, …).
    Conflict {
        field: Option<String>,
        message: String,
    },
    /// Too many requests; `retry_after` is in whole seconds (at least 1).
    RateLimited { message: String, retry_after: u64 },
    /// The request body is larger than allowed.
    PayloadTooLarge(String),
    /// The content type is not accepted.
    UnsupportedMediaType(String),
    /// A bug or an infrastructure failure; the cause is logged, the client sees a generic text.
    Internal(String),
    /// The database cannot be reached just now (an outage, not the caller's fault): code
    /// `INTERNAL` with `retryAfter`, HTTP 503 with `Retry-After`, so clients retry instead of
    /// treating it as a refusal (a client that sees UNAUTHENTICATED logs its user out).
    Unavailable { retry_after: u64 },
}

/// Seconds a client is asked to wait before retrying while the database is unreachable.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// Result alias used by the domain layer.
pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// Invalid input in a named field.
    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Self::BadInput {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// Conflict with existing state in a named field.
    pub fn conflict(field: &str, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// A refusal by a rate limit: `wait` is rounded up to whole seconds, at least one.
    pub fn rate_limited(what: &str, wait: std::time::Duration) -> Self {
        let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
        Self::RateLimited {
            message: format!("{what}; try again in {retry_after} s"),
            retry_after,
        }
    }

    /// Logs the cause and returns an opaque internal error.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal("internal server error".into())
    }

    /// The database is unreachable: logged as a warning (it is the database's state, not a bug).
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "database unavailable");
        Self::Unavailable {
            retry_after: UNAVAILABLE_RETRY_AFTER,
        }
    }

    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::BadInput { .. } => "BAD_USER_INPUT",
            Self::Conflict { .. } => "CONFLICT",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::Internal(_) | Self::Unavailable { .. } => "INTERNAL",
        }
    }

    /// The HTTP status for the REST shim.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadInput { .. } => StatusCode::BAD_REQUEST,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The client-facing message.
    pub fn message(&self) -> &str {
        match self {
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::PayloadTooLarge(m)
            | Self::UnsupportedMediaType(m)
            | Self::Internal(m) => m,
            Self::BadInput { message, .. }
            | Self::Conflict { message, .. }
            | Self::RateLimited { message, .. } => message,
            Self::Unavailable { .. } => {
                "the service is unavailable for a moment: try again shortly"
            }
        }
    }

    /// The input field the error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadInput { field, .. } | Self::Conflict { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// Seconds to wait before trying again, when the error says.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::db::is_unavailable(&err) {
            Self::unavailable(err)
        } else {
            Self::internal(err)
        }
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let mut ext = async_graphql::ErrorExtensionValues::default();
        ext.set("code", err.code());
        if let Some(field) = err.field() {
            ext.set("field", field);
        }
        if let Some(seconds) = err.retry_after() {
            ext.set("retryAfter", seconds);
        }
        async_graphql::Error {
            message: err.message().to_string(),
            source: None,
            extensions: Some(ext),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "detail": self.message(), "code": self.code() });
        let mut response = (self.status(), Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}
