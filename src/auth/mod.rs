//! Credentials: password hashing, access and refresh tokens, and the signing secret. Pure
//! mechanics; the rules (who may log in, which sessions are valid, what a refresh token's reuse
//! means) live in `domain::accounts` and `domain::sessions`.
pub mod password;
pub mod refresh;
pub mod secret;
pub mod token;
pub mod vapid;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The authenticated caller of a request or WebSocket connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewer {
    /// The user's id.
    pub user_id: Uuid,
    /// The session (token `jti`) the caller presented.
    pub session_id: Uuid,
    /// Staff may read every chat.
    pub is_staff: bool,
    /// When the access token the caller presented expires (its session may end sooner, never
    /// later); a WebSocket opened with it is closed then.
    pub token_expires_at: DateTime<Utc>,
}

/// What the transport learned about the caller before running the operation.
#[derive(Clone, Debug)]
pub enum AuthState {
    /// No credentials were presented.
    Anonymous,
    /// A valid, unrevoked token.
    Authenticated(Viewer),
    /// Credentials were presented but rejected (the reason is safe to show).
    Rejected(String),
    /// Credentials were presented but could not be checked (the database is unreachable):
    /// neither accepted nor refused, so the caller is told to try again, never to sign in again.
    Unverified(crate::error::AppError),
}

impl AuthState {
    /// The viewer, or the `UNAUTHENTICATED` error an operation that needs one returns.
    pub fn viewer(&self) -> crate::error::AppResult<&Viewer> {
        match self {
            Self::Authenticated(viewer) => Ok(viewer),
            Self::Anonymous => Err(crate::error::AppError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <token>`".into(),
            )),
            Self::Rejected(reason) => Err(crate::error::AppError::Unauthenticated(reason.clone())),
            Self::Unverified(err) => Err(err.clone()),
        }
    }
}
