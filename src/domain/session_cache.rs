//! Verified sessions kept in memory, so a request does not pay a database statement to learn
//! who is asking. A revoked token must never be accepted, not for a moment and not on another
//! instance, so an entry is trusted only while its user's revocation generation is the one it
//! was verified under:
//! - on one instance (no Redis) the generation lives here, and a revocation bumps it before the
//!   revoking request answers;
//! - with Redis it lives in Redis (`<prefix>sessions:gen:<user>`), bumped (INCR) after the commit
//!   and before the revoking request answers, and read with each request (one GET, no SQL). A
//!   failed read is not trusted: the request checks the database as before.
//!
//! Entries also age out after `TRUST_FOR`, which bounds how long a change made outside any
//! running instance (`goftgu staff`) takes to be seen, and a session's end is checked locally.
use std::{collections::HashMap, num::NonZeroUsize, sync::Mutex, time::Duration};

use chrono::{DateTime, Utc};
use lru::LruCache;
use redis::AsyncCommands;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{auth::Viewer, events::RedisLink};

/// Sessions kept, at most.
const ENTRIES: usize = 100_000;
/// How long a verified session is trusted without the database (revocations end it sooner).
const TRUST_FOR: Duration = Duration::from_secs(30);
/// How long Redis keeps a user's generation after its last bump (far beyond `TRUST_FOR`, so a
/// key cannot expire and count up to an old value while an entry that knew it lives).
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);

/// What a verified session says about its caller.
#[derive(Clone, Copy, Debug)]
pub struct Verified {
    pub user_id: Uuid,
    pub is_staff: bool,
    /// When the session (the refresh family) ends.
    pub session_expires_at: DateTime<Utc>,
}

#[derive(Clone, Copy)]
struct Entry {
    verified: Verified,
    generation: i64,
    at: Instant,
}

struct Local {
    entries: LruCache<Uuid, Entry>,
    /// Revocations per user on this instance (used without Redis).
    generations: HashMap<Uuid, i64>,
}

/// The cache of verified sessions.
pub struct SessionCache {
    local: Mutex<Local>,
    shared: Option<(redis::aio::ConnectionManager, String)>,
}

/// A user's generation as read before verifying: entries are stored under it.
#[derive(Clone, Copy, Debug)]
pub struct Generation(Option<i64>);

impl SessionCache {
    pub fn new(redis: Option<&RedisLink>) -> Self {
        Self {
            local: Mutex::new(Local {
                entries: LruCache::new(NonZeroUsize::new(ENTRIES).expect("non-zero")),
                generations: HashMap::new(),
            }),
            shared: redis
                .map(|link| (link.connection(), format!("{}sessions:gen:", link.prefix()))),
        }
    }

    /// The caller of token `jti` for user `sub`, when a trusted entry says so.
    pub async fn lookup(
        &self,
        jti: Uuid,
        sub: Uuid,
        token_expires_at: DateTime<Utc>,
    ) -> Option<Viewer> {
        let entry = *self.lock().entries.get(&jti)?;
        let fresh = entry.at.elapsed() < TRUST_FOR
            && entry.verified.user_id == sub
            && entry.verified.session_expires_at > Utc::now();
        let current = if fresh {
            self.generation(sub).await.0
        } else {
            None
        };
        if current != Some(entry.generation) {
            self.lock().entries.pop(&jti);
            return None;
        }
        Some(Viewer {
            user_id: sub,
            session_id: jti,
            is_staff: entry.verified.is_staff,
            token_expires_at: token_expires_at.min(entry.verified.session_expires_at),
        })
    }

    /// The user's generation now (None: unknown, Redis did not answer; nothing is cached then).
    pub async fn generation(&self, user: Uuid) -> Generation {
        match &self.shared {
            None => Generation(Some(
                self.lock().generations.get(&user).copied().unwrap_or(0),
            )),
            Some((connection, prefix)) => {
                let mut connection = connection.clone();
                let read: redis::RedisResult<Option<i64>> =
                    connection.get(format!("{prefix}{user}")).await;
                match read {
                    Ok(value) => Generation(Some(value.unwrap_or(0))),
                    Err(err) => {
                        tracing::debug!(error = %err, "session generation unreadable: not cached");
                        Generation(None)
                    }
                }
            }
        }
    }

    /// Keeps a session verified against the database, under the generation read before.
    pub fn keep(&self, session: Uuid, verified: Verified, generation: Generation) {
        let Some(generation) = generation.0 else {
            return;
        };
        self.lock().entries.put(
            session,
            Entry {
                verified,
                generation,
                at: Instant::now(),
            },
        );
    }

    /// Some of the user's sessions were revoked, or their rights changed (and committed): no instance may trust what it
    /// cached of them any more. Returns once that holds (or Redis failed, which is logged: the
    /// other instances then verify against the database only while their own reads fail too,
    /// and at most `TRUST_FOR` otherwise).
    pub async fn invalidate(&self, user: Uuid) {
        {
            let mut local = self.lock();
            *local.generations.entry(user).or_insert(0) += 1;
            let gone: Vec<Uuid> = local
                .entries
                .iter()
                .filter(|(_, e)| e.verified.user_id == user)
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                local.entries.pop(&id);
            }
        }
        if let Some((connection, prefix)) = &self.shared {
            let key = format!("{prefix}{user}");
            let mut connection = connection.clone();
            let bumped: redis::RedisResult<()> = redis::pipe()
                .atomic()
                .incr(&key, 1)
                .ignore()
                .expire(&key, GENERATION_TTL.as_secs() as i64)
                .ignore()
                .query_async(&mut connection)
                .await;
            if let Err(err) = bumped {
                tracing::warn!(error = %err, %user, "could not tell other instances of a revocation");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }
}
