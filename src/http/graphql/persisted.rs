//! Automatic persisted queries as Apollo defines them: a client sends
//! `extensions.persistedQuery {version: 1, sha256Hash}` without the document; an unknown hash is
//! answered `PERSISTED_QUERY_NOT_FOUND`, the client sends hash and document once, and from then on
//! the hash alone works (over `POST` and `GET`, so queries can ride on cacheable URLs). Documents
//! are kept in a bounded in-process LRU and, when the instance has Redis, in Redis too, so a hash
//! learnt by one instance works on every instance.
use std::{num::NonZeroUsize, sync::Mutex, time::Duration};

use async_graphql::ServerError;
use lru::LruCache;
use redis::AsyncCommands;
use sha2::Digest;

use super::{params::Params, render::error};
use crate::events::RedisLink;

/// Documents kept in this process, at most.
const LOCAL_ENTRIES: usize = 2048;
/// Bytes of documents kept in this process, at most.
const LOCAL_BYTES: usize = 16 * 1024 * 1024;
/// How long Redis keeps a document after it was last stored.
const SHARED_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

struct Local {
    entries: LruCache<String, String>,
    bytes: usize,
}

/// The documents known by their hash.
pub struct PersistedQueries {
    local: Mutex<Local>,
    shared: Option<(redis::aio::ConnectionManager, String)>,
}

impl PersistedQueries {
    pub fn new(redis: Option<&RedisLink>) -> Self {
        Self {
            local: Mutex::new(Local {
                entries: LruCache::new(NonZeroUsize::new(LOCAL_ENTRIES).expect("non-zero")),
                bytes: 0,
            }),
            shared: redis.map(|link| (link.connection(), format!("{}apq:", link.prefix()))),
        }
    }

    /// Completes `params` when it names a persisted query: fills in the document for a known
    /// hash, or checks and remembers a document sent with its hash. The error is the answer.
    pub async fn resolve(&self, params: &mut Params) -> Result<(), ServerError> {
        let Some(persisted) = params.extensions.get("persistedQuery") else {
            return Ok(());
        };
        let version = persisted.get("version").and_then(|v| v.as_i64());
        if version != Some(1) {
            return Err(error(
                "PersistedQueryNotSupported",
                "PERSISTED_QUERY_NOT_SUPPORTED",
            ));
        }
        let Some(hash) = persisted
            .get("sha256Hash")
            .and_then(|v| v.as_str())
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase)
        else {
            return Err(error(
                "`extensions.persistedQuery.sha256Hash` must be 64 hex digits",
                "BAD_USER_INPUT",
            ));
        };
        match &params.query {
            Some(query) => {
                if format!("{:x}", sha2::Sha256::digest(query.as_bytes())) != hash {
                    return Err(error("provided sha does not match query", "BAD_USER_INPUT"));
                }
                self.remember(&hash, query).await;
                Ok(())
            }
            None => match self.recall(&hash).await {
                Some(query) => {
                    params.query = Some(query);
                    Ok(())
                }
                None => Err(error("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")),
            },
        }
    }

    async fn remember(&self, hash: &str, query: &str) {
        self.keep_locally(hash, query);
        if let Some((connection, prefix)) = &self.shared {
            let mut connection = connection.clone();
            let stored: redis::RedisResult<()> = connection
                .set_ex(format!("{prefix}{hash}"), query, SHARED_FOR.as_secs())
                .await;
            if let Err(err) = stored {
                tracing::debug!(error = %err, "could not share a persisted query through Redis");
            }
        }
    }

    async fn recall(&self, hash: &str) -> Option<String> {
        if let Some(query) = self.lock().entries.get(hash).cloned() {
            return Some(query);
        }
        let (connection, prefix) = self.shared.as_ref()?;
        let mut connection = connection.clone();
        let found: redis::RedisResult<Option<String>> =
            connection.get(format!("{prefix}{hash}")).await;
        let query = found
            .inspect_err(|err| tracing::debug!(error = %err, "persisted query lookup failed"))
            .ok()
            .flatten()
            // Redis holds what was checked on the way in; check again rather than trust it.
            .filter(|q| format!("{:x}", sha2::Sha256::digest(q.as_bytes())) == hash)?;
        self.keep_locally(hash, &query);
        Some(query)
    }

    fn keep_locally(&self, hash: &str, query: &str) {
        if query.len() > LOCAL_BYTES / 16 {
            return;
        }
        let mut local = self.lock();
        // `push` hands back what it replaced or evicted.
        if let Some((_, old)) = local.entries.push(hash.to_owned(), query.to_owned()) {
            local.bytes -= old.len();
        }
        local.bytes += query.len();
        while local.bytes > LOCAL_BYTES {
            match local.entries.pop_lru() {
                Some((_, evicted)) => local.bytes -= evicted.len(),
                None => break,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }
}
