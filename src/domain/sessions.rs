//! Sessions: the rows behind access tokens. A token is valid only while its session row is
//! unexpired and unrevoked, so logging out, changing the password and expiry all end it here,
//! and long-lived connections re-check it. Accounts (who may sign in) live in `accounts`.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{Outbox, Viewer, autocommit};
use crate::{
    entity::{session, user},
    error::{AppError, AppResult},
    events::{Event, Topic},
    state::AppState,
};

/// A freshly issued access token and its user.
pub struct SignedIn {
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    pub user: user::Model,
}

/// Issues a token backed by a new session row, and prunes the user's expired sessions.
pub(super) async fn start(app: &AppState, user: user::Model) -> AppResult<SignedIn> {
    let now = Utc::now();
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user.id))
        .filter(session::Column::ExpiresAt.lt(now))
        .exec(&app.db)
        .await?;
    let expires_at = app.keys.expiry_from(now);
    let session = session::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user.id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    }
    .insert(&app.db)
    .await?;
    let access_token = app.keys.issue(user.id, session.id, now, expires_at)?;
    Ok(SignedIn {
        access_token,
        expires_at,
        user,
    })
}

/// Resolves a bearer token to its viewer: signature, expiry, session and user all checked.
pub async fn authenticate(app: &AppState, token: &str) -> AppResult<Viewer> {
    let claims = app.keys.decode(token)?;
    let (session, user) = session::Entity::find_by_id(claims.jti)
        .find_also_related(user::Entity)
        .one(&app.db)
        .await?
        .ok_or_else(revoked)?;
    let user = user.ok_or_else(revoked)?;
    if session.user_id != claims.sub || !valid(&session) {
        return Err(revoked());
    }
    Ok(Viewer {
        user_id: user.id,
        session_id: session.id,
        is_staff: user.is_staff,
    })
}

/// Revokes the session the caller presented (logging out); its live connections are told.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, session = %viewer.session_id))]
pub async fn revoke(app: &AppState, viewer: &Viewer) -> AppResult<()> {
    let viewer = *viewer;
    autocommit(app, |db, outbox| {
        Box::pin(async move {
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
                .filter(session::Column::Id.eq(viewer.session_id))
                .exec(db)
                .await?;
            let event = Event::SessionsRevoked {
                user_id: viewer.user_id,
                only: Some(viewer.session_id),
                except: None,
            };
            outbox.record(Topic::User(viewer.user_id), event);
            Ok(())
        })
    })
    .await
}

/// Revokes every session of the caller but the one they presented, as of `now`; their live
/// connections are told.
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

/// When the caller's session stops being valid by itself; UNAUTHENTICATED when it is already
/// revoked or expired (a database error is not such a verdict and stays an error of its own).
pub async fn expiry(app: &AppState, viewer: &Viewer) -> AppResult<DateTime<Utc>> {
    session::Entity::find_by_id(viewer.session_id)
        .one(&app.db)
        .await?
        .filter(valid)
        .map(|s| s.expires_at)
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
