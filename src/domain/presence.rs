//! Presence: a user with at least one live WebSocket is online. Each instance counts its own
//! sockets; with Redis it also keeps `<prefix>online:<user>` (a hash: instance → expiry) fresh by
//! heartbeat, so any instance can answer for all of them and a crashed instance's users go
//! offline by themselves when its entries expire. The last disconnect stores `lastSeen`.
use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use chrono::{DateTime, SubsecRound, Utc};
use redis::AsyncCommands;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
};
use crate::{
    app::AppState,
    entity::{chat_member, user},
    error::AppResult,
    events::{Event, RedisLink, Topic},
};

/// How long an instance's claim that a user is online lasts without a heartbeat.
const CLAIM_TTL: Duration = Duration::from_secs(30);
/// How often claims are renewed.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

/// This instance's live sockets per user, and the shared view in Redis.
#[derive(Default)]
pub struct Registry {
    sockets: Mutex<HashMap<Uuid, usize>>,
    redis: Option<RedisLink>,
}

impl Registry {
    /// A registry that shares presence through Redis when a link is given.
    pub fn new(redis: Option<RedisLink>) -> Self {
        Self {
            sockets: Mutex::default(),
            redis,
        }
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, usize>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(redis: &RedisLink, user: Uuid) -> String {
        format!("{}online:{user}", redis.prefix())
    }

    async fn claim(&self, users: &[Uuid]) {
        let Some(redis) = &self.redis else { return };
        let expiry = Utc::now().timestamp_millis() + CLAIM_TTL.as_millis() as i64;
        let mut pipe = redis::pipe();
        for user in users {
            let key = Self::key(redis, *user);
            pipe.hset(&key, redis.origin().to_string(), expiry).ignore();
            pipe.expire(&key, (CLAIM_TTL.as_secs() * 2) as i64).ignore();
        }
        let result: redis::RedisResult<()> = pipe.query_async(&mut redis.connection()).await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not renew presence in Redis");
        }
    }

    async fn release(&self, user: Uuid) {
        let Some(redis) = &self.redis else { return };
        let result: redis::RedisResult<i64> = redis
            .connection()
            .hdel(Self::key(redis, user), redis.origin().to_string())
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not release presence in Redis");
        }
    }

    /// Which of `users` are online anywhere.
    pub async fn online(&self, users: &[Uuid]) -> HashSet<Uuid> {
        let mut online: HashSet<Uuid> = {
            let sockets = self.sockets();
            users
                .iter()
                .copied()
                .filter(|u| sockets.contains_key(u))
                .collect()
        };
        let Some(redis) = &self.redis else {
            return online;
        };
        let rest: Vec<Uuid> = users
            .iter()
            .copied()
            .filter(|u| !online.contains(u))
            .collect();
        if rest.is_empty() {
            return online;
        }
        let mut pipe = redis::pipe();
        for user in &rest {
            pipe.hvals(Self::key(redis, *user));
        }
        let now = Utc::now().timestamp_millis();
        match pipe
            .query_async::<Vec<Vec<i64>>>(&mut redis.connection())
            .await
        {
            Ok(claims) => {
                for (user, expiries) in rest.iter().zip(claims) {
                    if expiries.iter().any(|e| *e > now) {
                        online.insert(*user);
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not read presence from Redis"),
        }
        online
    }
}

/// A socket of `user` opened. Announces the user online if they were not before.
pub async fn connect(app: &AppState, user: Uuid) {
    let first_here = {
        let mut sockets = app.presence.sockets();
        let count = sockets.entry(user).or_insert(0);
        *count += 1;
        *count == 1
    };
    if !first_here {
        return;
    }
    let elsewhere = remote_claims(app, user).await;
    app.presence.claim(&[user]).await;
    if !elsewhere {
        let event = Event::PresenceChanged {
            user_id: user,
            online: true,
            last_seen: None,
        };
        app.bus.publish(Topic::Presence(user), event).await;
    }
}

/// Whether another instance holds a live claim that `user` is online.
async fn remote_claims(app: &AppState, user: Uuid) -> bool {
    let Some(redis) = &app.presence.redis else {
        return false;
    };
    let now = Utc::now().timestamp_millis();
    let claims: redis::RedisResult<HashMap<String, i64>> =
        redis.connection().hgetall(Registry::key(redis, user)).await;
    claims.is_ok_and(|c| {
        c.iter()
            .any(|(instance, expiry)| *instance != redis.origin().to_string() && *expiry > now)
    })
}

/// A socket of `user` closed. On their last socket anywhere, stores `lastSeen` and announces
/// them offline. `lastSeen` is written before the user stops counting as online, so whoever
/// sees them offline also sees when they were last there.
pub async fn disconnect(app: &AppState, user: Uuid) {
    let last_here = {
        let mut sockets = app.presence.sockets();
        match sockets.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => true,
            None => false,
        }
    };
    if !last_here {
        return;
    }
    let now = match store_last_seen(app, user).await {
        Ok(now) => now,
        Err(_) => stored_now(), // logged by AppError; the announcement still goes out
    };
    {
        // A socket that opened meanwhile keeps the user online here.
        let mut sockets = app.presence.sockets();
        match sockets.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                return;
            }
            _ => {
                sockets.remove(&user);
            }
        }
    }
    app.presence.release(user).await;
    if remote_claims(app, user).await {
        return;
    }
    let event = Event::PresenceChanged {
        user_id: user,
        online: false,
        last_seen: Some(now),
    };
    app.bus.publish(Topic::Presence(user), event).await;
}

/// Now, at the precision the database keeps (microseconds), so what is returned or announced
/// equals what is read back later.
fn stored_now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Renews this instance's claims (run every `HEARTBEAT`).
pub async fn heartbeat(app: &AppState) {
    let users: Vec<Uuid> = app.presence.sockets().keys().copied().collect();
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
    let online = app.presence.online(&members).await;
    Ok(members.into_iter().filter(|m| online.contains(m)).collect())
}
