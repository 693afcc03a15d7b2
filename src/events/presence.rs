//! Who is online, as transport state: this instance's live sockets per user and, with Redis,
//! `<prefix>online:<user>` (a hash: instance → expiry) renewed by heartbeat, so any instance can
//! answer for all of them and a crashed instance's users go offline by themselves when its
//! entries expire. The rules (when to announce, `lastSeen`) are in `domain::presence`.
use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
    time::Duration,
};

use chrono::Utc;
use redis::AsyncCommands;
use uuid::Uuid;

use super::RedisLink;

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

    /// Counts a new socket of `user`; true when it is their first on this instance.
    pub fn opened(&self, user: Uuid) -> bool {
        let mut sockets = self.sockets();
        let count = sockets.entry(user).or_insert(0);
        *count += 1;
        *count == 1
    }

    /// A socket of `user` is closing: true when it is their last here (it is then still counted
    /// until `closed`), otherwise the count drops by one.
    pub fn closing(&self, user: Uuid) -> bool {
        let mut sockets = self.sockets();
        match sockets.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Finishes a `closing` that returned true: false when a socket opened meanwhile (the user
    /// stays online here), true when the user is gone from this instance.
    pub fn closed(&self, user: Uuid) -> bool {
        let mut sockets = self.sockets();
        match sockets.get_mut(&user) {
            Some(count) if *count > 1 => {
                *count -= 1;
                false
            }
            _ => {
                sockets.remove(&user);
                true
            }
        }
    }

    /// Forgets `user` here whatever their count (their sockets were dropped without a goodbye);
    /// true when they were counted.
    pub fn forget(&self, user: Uuid) -> bool {
        self.sockets().remove(&user).is_some()
    }

    /// Users with a live socket on this instance.
    pub fn local_users(&self) -> Vec<Uuid> {
        self.sockets().keys().copied().collect()
    }

    /// Whether another instance holds a live claim that `user` is online.
    pub async fn remote_claims(&self, user: Uuid) -> bool {
        let Some(redis) = &self.redis else {
            return false;
        };
        let now = Utc::now().timestamp_millis();
        let claims: redis::RedisResult<HashMap<String, i64>> =
            redis.connection().hgetall(Self::key(redis, user)).await;
        claims.is_ok_and(|c| {
            c.iter()
                .any(|(instance, expiry)| *instance != redis.origin().to_string() && *expiry > now)
        })
    }

    /// Renews this instance's claims for `users`.
    pub async fn claim(&self, users: &[Uuid]) {
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

    /// Drops this instance's claim for `user`.
    pub async fn release(&self, user: Uuid) {
        let Some(redis) = &self.redis else { return };
        let result: redis::RedisResult<i64> = redis
            .connection()
            .hdel(Self::key(redis, user), redis.origin().to_string())
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not release presence in Redis");
        }
    }

    /// Drops this instance's claims for every user counted here, in one round trip.
    pub async fn release_all(&self) {
        let Some(redis) = &self.redis else { return };
        let users = self.local_users();
        if users.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for user in users {
            pipe.hdel(Self::key(redis, user), redis.origin().to_string())
                .ignore();
        }
        let result: redis::RedisResult<()> = pipe.query_async(&mut redis.connection()).await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not release presence in Redis");
        }
    }

    /// Which of `users` are online anywhere (those whose claims in Redis cannot be read just
    /// now count as offline).
    pub async fn online(&self, users: &[Uuid]) -> HashSet<Uuid> {
        match self.lookup(users).await {
            Ok(online) | Err(online) => online,
        }
    }

    /// Which of `users` are online anywhere, or `None` while Redis cannot be read: for callers
    /// that act on someone being offline and must not take an outage for it.
    pub async fn online_known(&self, users: &[Uuid]) -> Option<HashSet<Uuid>> {
        self.lookup(users).await.ok()
    }

    /// The users online here and, with Redis, elsewhere; `Err` with those known (this
    /// instance's) when Redis could not be read.
    async fn lookup(&self, users: &[Uuid]) -> Result<HashSet<Uuid>, HashSet<Uuid>> {
        let mut online: HashSet<Uuid> = {
            let sockets = self.sockets();
            users
                .iter()
                .copied()
                .filter(|u| sockets.contains_key(u))
                .collect()
        };
        let Some(redis) = &self.redis else {
            return Ok(online);
        };
        let rest: Vec<Uuid> = users
            .iter()
            .copied()
            .filter(|u| !online.contains(u))
            .collect();
        if rest.is_empty() {
            return Ok(online);
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
                Ok(online)
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not read presence from Redis");
                Err(online)
            }
        }
    }
}
