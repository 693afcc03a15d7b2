//! Sessions: the rows behind access and refresh tokens. A session is one sign-in and the family
//! of its refresh tokens; its access tokens carry its id (`jti`). A token is valid only while its
//! session row is unexpired and unrevoked, so logging out, changing the password, reusing a
//! refresh token and expiry all end it here, and long-lived connections re-check it. Accounts
//! (who may sign in) live in `accounts`.
//!
//! Lifetimes: `sessions.expires_at` is the family's end, `refresh_ttl` after the last sign-in or
//! refresh; an access token expires `token_ttl` after it was issued (in its JWT), never after its
//! session. Refreshing trades the session's one current refresh token for a new one and a new
//! access token; a replaced refresh token presented again (a stolen copy, or a client that lost
//! the answer to its refresh) revokes the whole session, as OAuth's refresh token rotation does.
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{Outbox, Viewer, autocommit, in_transaction, session_cache::Verified};
use crate::{
    auth::refresh,
    entity::{refresh_token, session, user},
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// A freshly issued access token and refresh token, and their user.
pub struct SignedIn {
    pub access_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    /// When the refresh token expires (and the session with it) unless traded in before.
    pub refresh_expires_at: DateTime<Utc>,
    pub user: user::Model,
}

/// Issues tokens backed by a new session row, and prunes the user's expired sessions.
pub(super) async fn start(app: &AppState, user: user::Model) -> AppResult<SignedIn> {
    let now = Utc::now();
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user.id))
        .filter(session::Column::ExpiresAt.lt(now))
        .exec(&app.db)
        .await?;
    let family_end = now + refresh_ttl(app);
    let session_id = Uuid::new_v4();
    let fresh = refresh::generate();
    let user_id = user.id;
    in_transaction(app, |txn, _| {
        Box::pin(async move {
            session::ActiveModel {
                id: Set(session_id),
                user_id: Set(user_id),
                created_at: Set(now),
                expires_at: Set(family_end),
                revoked_at: Set(None),
            }
            .insert(txn)
            .await?;
            store(txn, fresh.hash, session_id, now).await
        })
    })
    .await?;
    sign_in(app, user, session_id, now, fresh.token, family_end)
}

/// Trades a refresh token in: its session gets a new access token and a new refresh token (and
/// lives `refresh_ttl` from now), and the presented one stops working. Anyone may call it; the
/// token is the credential. Refused with UNAUTHENTICATED when the token is unknown, expired or
/// of an ended session; a token already traded in revokes its whole session (its sockets are
/// closed). Of two refreshes of one token at the same time exactly one succeeds, and the other
/// is that reuse: the session ends (clients must not refresh one token twice at once).
/// `client` is where the request came from (limited per address).
#[tracing::instrument(skip_all, fields(user, session))]
pub async fn refresh(
    app: &AppState,
    client: Option<IpAddr>,
    presented: &str,
) -> AppResult<SignedIn> {
    app.limits.per_address(Action::Refresh, client).await?;
    let hash = refresh::hash(presented).ok_or_else(unknown_refresh)?;
    let (token, session) = refresh_token::Entity::find_by_id(hash.clone())
        .find_also_related(session::Entity)
        .one(&app.db)
        .await?
        .ok_or_else(unknown_refresh)?;
    let session = session.ok_or_else(unknown_refresh)?;
    let span = tracing::Span::current();
    span.record("user", tracing::field::display(session.user_id));
    span.record("session", tracing::field::display(session.id));
    let now = Utc::now();
    if session.revoked_at.is_some() {
        return Err(AppError::Unauthenticated(
            "refresh token revoked: its session was signed out; sign in again".into(),
        ));
    }
    if session.expires_at <= now {
        return Err(AppError::Unauthenticated(
            "refresh token expired; sign in again".into(),
        ));
    }
    if token.replaced_at.is_some() {
        return Err(reused(app, &session).await);
    }
    let user = user::Entity::find_by_id(session.user_id)
        .one(&app.db)
        .await?
        .ok_or_else(unknown_refresh)?;
    let lifetime = refresh_ttl(app);
    let family_end = now + lifetime;
    let fresh = refresh::generate();
    let session_id = session.id;
    // The presented token is marked replaced only if nobody did it first (decided by the rows
    // the conditional UPDATE touched: the database serialises the two writers on PostgreSQL and
    // SQLite alike), and the session extended only while it is still valid.
    let rotated = in_transaction(app, |txn, _| {
        Box::pin(async move {
            let replaced = refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::ReplacedAt, Expr::value(now))
                .filter(refresh_token::Column::TokenHash.eq(hash))
                .filter(refresh_token::Column::ReplacedAt.is_null())
                .exec(txn)
                .await?;
            if replaced.rows_affected == 0 {
                return Ok(false);
            }
            let extended = session::Entity::update_many()
                .col_expr(session::Column::ExpiresAt, Expr::value(family_end))
                .filter(session::Column::Id.eq(session_id))
                .filter(session::Column::RevokedAt.is_null())
                .filter(session::Column::ExpiresAt.gt(now))
                .exec(txn)
                .await?;
            if extended.rows_affected == 0 {
                // Signed out (or expired) since it was read: rolled back, refused.
                return Err(revoked());
            }
            store(txn, fresh.hash, session_id, now).await?;
            // A session refreshed for months keeps a bounded list: tokens issued more than a
            // lifetime ago would be expired anyway, so their reuse need not be recognised.
            refresh_token::Entity::delete_many()
                .filter(refresh_token::Column::SessionId.eq(session_id))
                .filter(refresh_token::Column::CreatedAt.lt(now - lifetime))
                .exec(txn)
                .await?;
            Ok(true)
        })
    })
    .await?;
    if !rotated {
        // Another refresh of the same token won the race: that is reuse too.
        return Err(reused(app, &session).await);
    }
    sign_in(app, user, session_id, now, fresh.token, family_end)
}

/// Stores a refresh token (its hash) of a session.
async fn store<C: ConnectionTrait>(
    db: &C,
    hash: String,
    session_id: Uuid,
    now: DateTime<Utc>,
) -> AppResult<()> {
    refresh_token::ActiveModel {
        token_hash: Set(hash),
        session_id: Set(session_id),
        created_at: Set(now),
        replaced_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The answer to a signed-in session: an access token that ends with its session at the latest.
fn sign_in(
    app: &AppState,
    user: user::Model,
    session_id: Uuid,
    now: DateTime<Utc>,
    refresh_token: String,
    family_end: DateTime<Utc>,
) -> AppResult<SignedIn> {
    let expires_at = app.keys.expiry_from(now).min(family_end);
    let access_token = app.keys.issue(user.id, session_id, now, expires_at)?;
    Ok(SignedIn {
        access_token,
        expires_at,
        refresh_token,
        refresh_expires_at: family_end,
        user,
    })
}

/// A replaced refresh token was presented: its session ends (every token of it, its sockets
/// closed), and the caller is told.
async fn reused(app: &AppState, session: &session::Model) -> AppError {
    tracing::warn!(
        user = %session.user_id,
        session = %session.id,
        "a replaced refresh token was presented again; its session is revoked"
    );
    match end(app, session.user_id, session.id).await {
        Ok(()) => AppError::Unauthenticated(
            "refresh token already used: its session is revoked; sign in again".into(),
        ),
        Err(err) => err,
    }
}

/// How long a session lives after its last sign-in or refresh (at most a millennium, so the
/// sum with now stays a date).
fn refresh_ttl(app: &AppState) -> chrono::Duration {
    const MILLENNIUM: u64 = 1000 * 366 * 24 * 3600;
    chrono::Duration::seconds(app.config.refresh_ttl_seconds.min(MILLENNIUM) as i64)
}

fn unknown_refresh() -> AppError {
    AppError::Unauthenticated("invalid refresh token".into())
}

/// Resolves a bearer token to its viewer: signature, expiry, session and user all checked.
pub async fn authenticate(app: &AppState, token: &str) -> AppResult<Viewer> {
    let claims = app.keys.decode(token)?;
    let token_expires_at = DateTime::from_timestamp(claims.exp, 0);
    if let Some(expires) = token_expires_at
        && let Some(viewer) = app.sessions.lookup(claims.jti, claims.sub, expires).await
    {
        return Ok(viewer);
    }
    // Read before the session: a revocation after it shows as a newer generation.
    let generation = app.sessions.generation(claims.sub).await;
    let (session, user) = session::Entity::find_by_id(claims.jti)
        .find_also_related(user::Entity)
        .one(&app.db)
        .await?
        .ok_or_else(revoked)?;
    let user = user.ok_or_else(revoked)?;
    if session.user_id != claims.sub || !valid(&session) {
        return Err(revoked());
    }
    app.sessions.keep(
        session.id,
        Verified {
            user_id: user.id,
            is_staff: user.is_staff,
            session_expires_at: session.expires_at,
        },
        generation,
    );
    Ok(Viewer {
        user_id: user.id,
        session_id: session.id,
        is_staff: user.is_staff,
        token_expires_at: token_expires_at.unwrap_or(session.expires_at),
    })
}

/// Revokes the session the caller presented (logging out), with its refresh token; its live
/// connections are told.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, session = %viewer.session_id))]
pub async fn revoke(app: &AppState, viewer: &Viewer) -> AppResult<()> {
    end(app, viewer.user_id, viewer.session_id).await
}

/// Revokes one session (the first revocation's time is kept); its live connections are told.
async fn end(app: &AppState, user_id: Uuid, session_id: Uuid) -> AppResult<()> {
    autocommit(app, |db, outbox| {
        Box::pin(async move {
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
                .filter(session::Column::Id.eq(session_id))
                .filter(session::Column::RevokedAt.is_null())
                .exec(db)
                .await?;
            let event = Event::SessionsRevoked {
                user_id,
                only: Some(session_id),
                except: None,
            };
            outbox.record(Topic::User(user_id), event);
            Ok(())
        })
    })
    .await
}

/// Revokes every session of the caller but the one they presented, as of `now`, with their
/// refresh tokens; their live connections are told.
pub(super) async fn revoke_others<C: ConnectionTrait>(
    db: &C,
    outbox: &mut Outbox<'_>,
    viewer: &Viewer,
    now: DateTime<Utc>,
) -> AppResult<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(viewer.user_id))
        .filter(session::Column::Id.ne(viewer.session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    let event = Event::SessionsRevoked {
        user_id: viewer.user_id,
        only: None,
        except: Some(viewer.session_id),
    };
    outbox.record(Topic::User(viewer.user_id), event);
    Ok(())
}

/// When the caller's credentials stop being valid by themselves: their access token's expiry,
/// or their session's end when that comes first. UNAUTHENTICATED when the session is already
/// revoked or expired (a database error is not such a verdict and stays an error of its own).
/// Asked through the session cache first, as every request's token is: a socket that just
/// authenticated (and each subscription it starts) costs no statement, and an entry is trusted
/// only under the user's current revocation generation.
pub async fn expiry(app: &AppState, viewer: &Viewer) -> AppResult<DateTime<Utc>> {
    if let Some(known) = app
        .sessions
        .lookup(viewer.session_id, viewer.user_id, viewer.token_expires_at)
        .await
    {
        return Ok(known.token_expires_at);
    }
    // Boxed: a hit then carries no statement's state.
    Box::pin(stored_expiry(app, viewer)).await
}

/// `expiry` as the database tells it, past the cache: for a connection that may have missed a
/// revocation (its events lagged, or the link between instances was down, when a revoking
/// instance may also have failed to bump the generation the cache trusts).
pub async fn stored_expiry(app: &AppState, viewer: &Viewer) -> AppResult<DateTime<Utc>> {
    session::Entity::find_by_id(viewer.session_id)
        .one(&app.db)
        .await?
        .filter(valid)
        .map(|s| s.expires_at.min(viewer.token_expires_at))
        .ok_or_else(revoked)
}

/// Re-checks, for a long-lived connection, that the session it authenticated with is still
/// valid (not logged out, not expired).
pub async fn ensure_active(app: &AppState, viewer: &Viewer) -> AppResult<()> {
    expiry(app, viewer).await.map(|_| ())
}

/// Neither revoked nor expired.
fn valid(session: &session::Model) -> bool {
    session.revoked_at.is_none() && session.expires_at > Utc::now()
}

fn revoked() -> AppError {
    AppError::Unauthenticated("token revoked or expired".into())
}
