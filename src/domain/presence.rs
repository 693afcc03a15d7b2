//! Presence rules: a user with at least one live WebSocket is online. The counting and the shared
//! view in Redis are transport state (`events::presence::Registry`); this module decides when
//! someone comes online or goes offline, announces it, and stores `lastSeen` on the last
//! disconnect. Going offline everywhere also starts the grace period of voice seats. Who may see
//! it is `privacy`'s to decide.
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
    voice,
};
use crate::{
    entity::{chat_member, user},
    error::AppResult,
    events::{Event, Topic},
    state::AppState,
};

pub use crate::events::presence::HEARTBEAT;

/// A socket of `user` opened. Announces the user online if they were not before.
pub async fn connect(app: &AppState, user: Uuid) {
    if !app.presence.opened(user) {
        return;
    }
    let elsewhere = app.presence.remote_claims(user).await;
    app.presence.claim(&[user]).await;
    if !elsewhere {
        let event = Event::PresenceChanged {
            user_id: user,
            online: true,
            last_seen: None,
            visibility: None,
        };
        app.bus.publish(Topic::Presence(user), event).await;
    }
}

/// A socket of `user` closed. On their last socket anywhere, stores `lastSeen` and announces
/// them offline. `lastSeen` is written before the user stops counting as online, so whoever
/// sees them offline also sees when they were last there.
pub async fn disconnect(app: &AppState, user: Uuid) {
    if !app.presence.closing(user) {
        return;
    }
    let now = match store_last_seen(app, user).await {
        Ok(now) => now,
        Err(err) => {
            // The announcement still goes out; the failure is only logged.
            err.log();
            stored_now()
        }
    };
    // A socket that opened meanwhile keeps the user online here.
    if app.presence.closed(user) {
        gone(app, user, now).await;
    }
}

/// `user` left this instance: their claim goes, and if no other instance holds one they are
/// offline everywhere (announced, and their voice seat's grace period starts).
async fn gone(app: &AppState, user: Uuid, now: DateTime<Utc>) {
    app.presence.release(user).await;
    if app.presence.remote_claims(user).await {
        return;
    }
    voice::grace::went_offline(app, user, now).await;
    let event = Event::PresenceChanged {
        user_id: user,
        online: false,
        last_seen: Some(now),
        visibility: None,
    };
    app.bus.publish(Topic::Presence(user), event).await;
}

/// The instance is stopping and about to close its sockets: its claims go at once, in one round
/// trip, so other instances stop counting these users online now rather than when the claims
/// expire. The offline announcements follow socket by socket, as on any last disconnect.
pub async fn stopping(app: &AppState) {
    app.presence.release_all().await;
}

/// The drain is over: users whose sockets were dropped before their goodbye leave as on a last
/// disconnect (`lastSeen`, claim released, offline announced when offline everywhere).
pub async fn leave_all(app: &AppState) {
    for user in app.presence.local_users() {
        let now = store_last_seen(app, user).await.unwrap_or_else(|err| {
            err.log();
            stored_now()
        });
        if app.presence.forget(user) {
            gone(app, user, now).await;
        }
    }
}

/// Now, at the precision the database keeps (microseconds), so what is returned or announced
/// equals what is read back later.
fn stored_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Renews this instance's claims (run every `HEARTBEAT`).
pub async fn heartbeat(app: &AppState) {
    let users = app.presence.local_users();
    if !users.is_empty() {
        app.presence.claim(&users).await;
    }
}

/// Records that the caller was active just now; returns the stored time.
pub async fn touch_last_seen(app: &AppState, viewer: &Viewer) -> AppResult<DateTime<Utc>> {
    store_last_seen(app, viewer.user_id).await
}

/// Stores "now" (at the database's precision) as `user`'s `lastSeen` and returns it.
async fn store_last_seen(app: &AppState, user: Uuid) -> AppResult<DateTime<Utc>> {
    let now = stored_now();
    user::Entity::update_many()
        .col_expr(user::Column::LastSeenAt, Expr::value(now))
        .filter(user::Column::Id.eq(user))
        .exec(&app.db)
        .await?;
    Ok(now)
}

/// The members of a chat who are online now.
pub async fn online_members(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
) -> AppResult<Vec<Uuid>> {
    chat_access(app, viewer, chat_id, Need::Read).await?;
    let members: Vec<Uuid> = chat_member::Entity::find()
        .filter(chat_member::Column::ChatId.eq(chat_id))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let online: Vec<Uuid> = app.presence.online(&members).await.into_iter().collect();
    if online.is_empty() {
        return Ok(online);
    }
    // Only those whose presence the caller may see.
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(online))
        .all(&app.db)
        .await?;
    let visible = super::privacy::visible(&app.db, viewer.user_id, &users).await?;
    Ok(members
        .into_iter()
        .filter(|m| visible.contains(m))
        .collect())
}
