//! Reads `Authorization: Bearer <token>` and resolves it to the caller before GraphQL runs.
use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, header::AUTHORIZATION, request::Parts},
};

use super::HttpState;
use crate::{
    auth::{AuthState, Viewer},
    domain::sessions,
    error::{AppError, AppResult},
    state::AppState,
};

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
pub struct CurrentUser(pub Viewer);

/// The caller of a REST request, if a valid token was sent (downloads also accept signed links).
pub struct MaybeUser(pub Option<Viewer>);

// Both read the caller the way GraphQL does (`AuthState::viewer`): a rejected token is 401 and a
// token that could not be checked is the outage's 503, for either.

impl FromRequestParts<HttpState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> AppResult<Self> {
        let auth = from_headers(&state.app, &parts.headers).await;
        auth.viewer().map(|viewer| Self(*viewer))
    }
}

impl FromRequestParts<HttpState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &HttpState) -> AppResult<Self> {
        match from_headers(&state.app, &parts.headers).await {
            AuthState::Anonymous => Ok(Self(None)),
            auth => auth.viewer().map(|viewer| Self(Some(*viewer))),
        }
    }
}
