//! Access tokens: HS256 JWTs carrying the user id (`sub`) and the session id (`jti`).
//! A signature and expiry check here; revocation is checked against the session row by the domain.
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

const ISSUER: &str = "goftgu";

/// The claims inside every access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: Uuid,
    /// Session id; unique per token.
    pub jti: Uuid,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Always `goftgu`.
    pub iss: String,
}

/// Signing and verification keys plus the token lifetime.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: chrono::Duration,
}

impl TokenKeys {
    /// Keys from a secret; `ttl_seconds` is the lifetime of issued tokens.
    pub fn new(secret: &str, ttl_seconds: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation,
            ttl: chrono::Duration::seconds(ttl_seconds.min(i64::MAX as u64 / 2) as i64),
        }
    }

    /// When a token issued now expires.
    pub fn expiry_from(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + self.ttl
    }

    /// Signs a token for a session.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        issued_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> AppResult<String> {
        let claims = Claims {
            sub: user_id,
            jti: session_id,
            iat: issued_at.timestamp(),
            exp: expires_at.timestamp(),
            iss: ISSUER.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::internal(e))
    }

    /// Verifies signature, issuer and expiry; the error message is safe to show.
    pub fn decode(&self, token: &str) -> AppResult<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    AppError::Unauthenticated("token expired".into())
                }
                _ => AppError::Unauthenticated("invalid token".into()),
            })
    }
}
