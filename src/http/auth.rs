//! Reads `Authorization: Bearer <token>` and resolves it to the caller before GraphQL runs.
use axum::http::{HeaderMap, header::AUTHORIZATION};

use crate::{auth::AuthState, domain::sessions, error::AppError, state::AppState};

/// The caller of an HTTP request: anonymous without a header, rejected with a bad one.
pub async fn from_headers(app: &AppState, headers: &HeaderMap) -> AuthState {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return AuthState::Anonymous;
    };
    match value.to_str().ok().and_then(bearer_token) {
        Some(token) => from_token(app, token).await,
        None => {
            AuthState::Rejected("malformed Authorization header: expected `Bearer <token>`".into())
        }
    }
}

/// Resolves a raw token (HTTP header or WebSocket `connection_init`). Only a verdict on the
/// token rejects it; a database that cannot be asked leaves it unverified.
pub async fn from_token(app: &AppState, token: &str) -> AuthState {
    match sessions::authenticate(app, token).await {
        Ok(viewer) => AuthState::Authenticated(viewer),
        Err(AppError::Unauthenticated(reason)) => AuthState::Rejected(reason),
        Err(err) => AuthState::Unverified(err),
    }
}

/// `Bearer abc` (any case of the scheme) → `abc`.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The signed-in caller of a REST request; rejects with 401 `{"detail": …}` otherwise.
pub struct CurrentUser(pub crate::auth::Viewer);

impl axum::extract::FromRequestParts<super::HttpState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &super::HttpState,
    ) -> Result<Self, Self::Rejection> {
        match from_headers(&state.app, &parts.headers).await {
            AuthState::Authenticated(viewer) => Ok(Self(viewer)),
            AuthState::Anonymous => Err(AppError::Unauthenticated(
                "authentication required: send `Authorization: Bearer <token>`".into(),
            )),
            AuthState::Rejected(reason) => Err(AppError::Unauthenticated(reason)),
            AuthState::Unverified(err) => Err(err),
        }
    }
}

/// The caller of a REST request, if a valid token was sent (downloads also accept signed links).
pub struct MaybeUser(pub Option<crate::auth::Viewer>);

impl axum::extract::FromRequestParts<super::HttpState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &super::HttpState,
    ) -> Result<Self, Self::Rejection> {
        match from_headers(&state.app, &parts.headers).await {
            AuthState::Authenticated(viewer) => Ok(Self(Some(viewer))),
            AuthState::Anonymous => Ok(Self(None)),
            AuthState::Rejected(reason) => Err(AppError::Unauthenticated(reason)),
            AuthState::Unverified(err) => Err(err),
        }
    }
}
