//! One error type for the whole server. The domain returns `AppError`; the transports turn it into
//! a GraphQL error with a stable `extensions.code` (`graphql::errors`) or an HTTP status with
//! `{"detail": …}` (`http::errors`). An internal error keeps its cause and the place it was raised,
//! so the edge that answers the client can log it once with the whole chain; clients only ever
//! see a generic text.
use std::{error::Error as StdError, fmt, panic::Location, sync::Arc};

use http::StatusCode;

/// Everything that can go wrong while serving a request.
///
/// Deliberately not `Display`: async-graphql converts any `Display` into an error without a code,
/// so keeping this type out of that blanket impl forces every resolver through the `From` impl
/// of the GraphQL layer.
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
    /// A room's voice has no free seat (`VOICE_FULL`, HTTP 409).
    VoiceFull(String),
    /// Too many requests; `retry_after` is in whole seconds (at least 1).
    RateLimited { message: String, retry_after: u64 },
    /// The request body is larger than allowed.
    PayloadTooLarge(String),
    /// The content type is not accepted.
    UnsupportedMediaType(String),
    /// A bug or an infrastructure failure; the cause is logged at the edge, the client sees a
    /// generic text.
    Internal(Fault),
    /// The database cannot be reached just now (an outage, not the caller's fault): code
    /// `INTERNAL` with `retryAfter`, HTTP 503 with `Retry-After`, so clients retry instead of
    /// treating it as a refusal (a client that sees UNAUTHENTICATED logs its user out).
    Unavailable { retry_after: u64, fault: Fault },
}

/// Why an internal error happened and where: the cause with its `source()` chain, and the place
/// in this code base that raised it. For the operator's log only, never for the client.
#[derive(Clone)]
pub struct Fault {
    cause: Arc<dyn StdError + Send + Sync>,
    location: &'static Location<'static>,
}

/// Seconds a client is asked to wait before retrying while the database is unreachable.
pub const UNAVAILABLE_RETRY_AFTER: u64 = 5;

/// What clients see of an internal error, whatever its cause.
const INTERNAL_MESSAGE: &str = "internal server error";

/// What clients see while the database is unreachable.
const UNAVAILABLE_MESSAGE: &str = "the service is unavailable for a moment: try again shortly";

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

    /// An internal error with its cause (any error, or a text) and the caller's place. Call it
    /// directly or in a closure (`map_err(|e| AppError::internal(e))`): passed by name to
    /// `map_err`, the place recorded would be inside the standard library.
    #[track_caller]
    pub fn internal(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(Fault::new(cause))
    }

    /// The database is unreachable; the edge logs it as a warning (it is the database's state,
    /// not a bug).
    #[track_caller]
    pub fn unavailable(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Unavailable {
            retry_after: UNAVAILABLE_RETRY_AFTER,
            fault: Fault::new(cause),
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
            Self::VoiceFull(_) => "VOICE_FULL",
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
            Self::Conflict { .. } | Self::VoiceFull(_) => StatusCode::CONFLICT,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The client-facing message (never an internal cause).
    pub fn message(&self) -> &str {
        match self {
            Self::Unauthenticated(m)
            | Self::Forbidden(m)
            | Self::NotFound(m)
            | Self::VoiceFull(m)
            | Self::PayloadTooLarge(m)
            | Self::UnsupportedMediaType(m) => m,
            Self::BadInput { message, .. }
            | Self::Conflict { message, .. }
            | Self::RateLimited { message, .. } => message,
            Self::Internal(_) => INTERNAL_MESSAGE,
            Self::Unavailable { .. } => UNAVAILABLE_MESSAGE,
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
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// The cause of an internal error or an outage; refusals have none.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Self::Internal(fault) | Self::Unavailable { fault, .. } => Some(fault),
            _ => None,
        }
    }

    /// Logs what the operator must know, once, where the error leaves the server (the edges call
    /// this): an internal error with its cause chain and place, an outage as a warning. Refusals
    /// are the client's business and are not logged.
    pub fn log(&self) {
        match self {
            Self::Internal(fault) => {
                tracing::error!(error = %fault, at = %fault.location, "internal error");
            }
            Self::Unavailable { fault, .. } => {
                tracing::warn!(error = %fault, at = %fault.location, "database unavailable");
            }
            _ => {}
        }
    }

    /// The message with the cause and place, for an operator's terminal (command-line tools).
    pub fn diagnostic(&self) -> String {
        match self.fault() {
            Some(fault) => format!("{}: {fault} (at {})", self.message(), fault.location),
            None => self.message().to_string(),
        }
    }
}

impl Fault {
    /// Records `cause` at the caller's place.
    #[track_caller]
    pub fn new(cause: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            cause: Arc::from(cause.into()),
            location: Location::caller(),
        }
    }

    /// The error that caused it (its `source()` chain continues from there).
    pub fn cause(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.cause
    }

    /// The place in this code base where the error was raised.
    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// Whether two faults are one (clones of the same error, e.g. shared by a batch load).
    pub fn same_as(&self, other: &Fault) -> bool {
        Arc::ptr_eq(&self.cause, &other.cause)
    }
}

/// The cause and its sources, outermost first, joined by `: `. A source whose text the previous
/// one already repeats (many errors print their source inside their own text) is skipped.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut previous = self.cause.to_string();
        f.write_str(&previous)?;
        let mut source = self.cause.source();
        while let Some(error) = source {
            let text = error.to_string();
            if !previous.contains(&text) {
                write!(f, ": {text}")?;
            }
            previous = text;
            source = error.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fault({self} at {})", self.location)
    }
}

impl From<sea_orm::DbErr> for AppError {
    /// Through `?`, the place recorded is the `?` (the standard library's conversion passes the
    /// caller's place on).
    #[track_caller]
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::db::is_unavailable(&err) {
            Self::unavailable(err)
        } else {
            Self::internal(err)
        }
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    #[track_caller]
    fn from(err: sea_orm::TransactionError<AppError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a source, as libraries nest them.
    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("query failed")
        }
    }

    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    fn secret_cause() -> Outer {
        Outer(std::io::Error::other(
            "password=hunter2 at db.internal:5432",
        ))
    }

    fn every_kind() -> Vec<AppError> {
        vec![
            AppError::Unauthenticated("who are you".into()),
            AppError::Forbidden("not yours".into()),
            AppError::NotFound("no such chat".into()),
            AppError::bad_input("roomId", "not a room"),
            AppError::conflict("username", "taken"),
            AppError::VoiceFull("no seat left".into()),
            AppError::rate_limited("slow down", std::time::Duration::from_millis(1500)),
            AppError::PayloadTooLarge("too big".into()),
            AppError::UnsupportedMediaType("not an image".into()),
            AppError::internal(secret_cause()),
            AppError::unavailable(secret_cause()),
        ]
    }

    #[test]
    fn codes_and_statuses() {
        let table: Vec<_> = every_kind()
            .iter()
            .map(|e| (e.code(), e.status().as_u16()))
            .collect();
        assert_eq!(
            table,
            [
                ("UNAUTHENTICATED", 401),
                ("FORBIDDEN", 403),
                ("NOT_FOUND", 404),
                ("BAD_USER_INPUT", 400),
                ("CONFLICT", 409),
                ("VOICE_FULL", 409),
                ("RATE_LIMITED", 429),
                ("PAYLOAD_TOO_LARGE", 413),
                ("UNSUPPORTED_MEDIA_TYPE", 415),
                ("INTERNAL", 500),
                ("INTERNAL", 503),
            ]
        );
    }

    #[test]
    fn retry_after_is_whole_seconds_and_only_where_it_applies() {
        let retry: Vec<_> = every_kind().iter().map(AppError::retry_after).collect();
        let mut expected = vec![None; 11];
        expected[6] = Some(2); // 1.5 s rounds up
        expected[10] = Some(UNAVAILABLE_RETRY_AFTER);
        assert_eq!(retry, expected);
        let short = AppError::rate_limited("slow down", std::time::Duration::from_millis(10));
        assert_eq!(short.retry_after(), Some(1), "at least one second");
        assert_eq!(short.message(), "slow down; try again in 1 s");
    }

    #[test]
    fn fields_only_on_input_errors() {
        let fields: Vec<_> = every_kind()
            .iter()
            .filter_map(|e| e.field().map(str::to_owned))
            .collect();
        assert_eq!(fields, ["roomId", "username"]);
    }

    #[test]
    fn the_client_never_sees_an_internal_cause() {
        for err in [
            AppError::internal(secret_cause()),
            AppError::unavailable(secret_cause()),
            AppError::internal("password=hunter2"),
        ] {
            assert!(!err.message().contains("hunter2"), "{err:?}");
            assert!(!err.message().contains("query failed"), "{err:?}");
            assert!(err.field().is_none());
        }
        assert_eq!(
            AppError::internal(secret_cause()).message(),
            "internal server error"
        );
    }

    #[test]
    fn the_fault_keeps_the_chain_and_the_place() {
        let err = AppError::internal(secret_cause());
        let line = line!() - 1;
        let fault = err.fault().expect("internal errors carry their cause");
        assert_eq!(
            fault.to_string(),
            "query failed: password=hunter2 at db.internal:5432"
        );
        assert_eq!(fault.location().file(), file!());
        assert_eq!(fault.location().line(), line);
        assert!(
            err.diagnostic()
                .starts_with("internal server error: query failed")
        );
        assert!(AppError::NotFound("x".into()).fault().is_none());
    }

    #[test]
    fn a_source_repeated_in_its_parent_text_is_not_repeated() {
        #[derive(Debug)]
        struct Wraps(std::io::Error);
        impl fmt::Display for Wraps {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "execution error: {}", self.0)
            }
        }
        impl StdError for Wraps {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let err = AppError::internal(Wraps(std::io::Error::other("disk full")));
        assert_eq!(
            err.fault().map(ToString::to_string).as_deref(),
            Some("execution error: disk full")
        );
    }

    #[test]
    fn clones_share_one_fault() {
        let err = AppError::internal("boom");
        let copy = err.clone();
        let (Some(a), Some(b)) = (err.fault(), copy.fault()) else {
            panic!("internal errors carry their cause");
        };
        assert!(a.same_as(b));
        let other = AppError::internal("boom");
        assert!(!a.same_as(other.fault().expect("a fault")));
    }

    #[test]
    fn database_errors_through_question_mark_keep_their_place() {
        fn query() -> AppResult<()> {
            Err(sea_orm::DbErr::Custom("no such table: chat".into()))?;
            Ok(())
        }
        let err = query().expect_err("an error");
        let fault = err.fault().expect("internal");
        assert_eq!(fault.location().file(), file!());
        assert!(fault.to_string().contains("no such table"));
    }
}
