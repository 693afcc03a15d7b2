//! Budgets shared by every instance through Redis: one GCRA step per decision, run atomically by
//! a Lua script on Redis's clock (so instances whose clocks differ still agree). Each bucket is
//! one key holding its "theoretical arrival time", expiring when the bucket is full again. When
//! Redis fails the caller falls back to its local bucket; Redis is then left alone for a few
//! seconds (so an outage does not add a timeout to every request) and the fallback is logged at
//! most once a minute.
use std::{
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use redis::aio::ConnectionManager;
use sha1::{Digest, Sha1};

use super::{Action, Rule};
use crate::events::RedisLink;

/// KEYS[1]: the bucket; ARGV: milliseconds per action, burst, cost. Returns 0 when allowed
/// (and spends), otherwise the milliseconds to wait (and spends nothing).
const SCRIPT: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + cost * interval
local wait = new_tat - now - burst * interval
if wait > 0 then return wait end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', new_tat - now)
return 0
";

/// How long Redis is left alone after it failed.
const PAUSE: Duration = Duration::from_secs(5);
/// Least time between two warnings about the fallback.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// The Redis side of the limits.
pub struct Shared {
    connection: ConnectionManager,
    prefix: String,
    sha: String,
    /// Until when Redis is not asked (after a failure).
    paused_until: Mutex<Option<Instant>>,
    /// When the fallback was last logged.
    warned_at: Mutex<Option<Instant>>,
}

impl Shared {
    pub fn new(redis: &RedisLink) -> Self {
        let sha = Sha1::digest(SCRIPT.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self {
            connection: redis.connection(),
            prefix: redis.prefix().to_string(),
            sha,
            paused_until: Mutex::new(None),
            warned_at: Mutex::new(None),
        }
    }

    /// The shared decision: `Some(None)` allowed, `Some(Some(wait))` refused, `None` when Redis
    /// could not decide (the caller decides locally).
    pub async fn spend(
        &self,
        action: Action,
        key: &str,
        rule: Rule,
        cost: NonZeroU32,
    ) -> Option<Option<Duration>> {
        if lock(&self.paused_until).is_some_and(|until| Instant::now() < until) {
            return None;
        }
        let key = self.key(action, key);
        let interval_ms = (60_000 / rule.per_minute.get()).max(1);
        let run = |command: &str, script: &str| {
            let mut invocation = redis::cmd(command);
            invocation
                .arg(script)
                .arg(1)
                .arg(&key)
                .arg(interval_ms)
                .arg(rule.burst.get())
                .arg(cost.get());
            invocation
        };
        let mut connection = self.connection.clone();
        let mut answer: redis::RedisResult<i64> =
            run("EVALSHA", &self.sha).query_async(&mut connection).await;
        if answer
            .as_ref()
            .is_err_and(|e| e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript))
        {
            // First use on this Redis (or after a restart): EVAL also caches the script.
            answer = run("EVAL", SCRIPT).query_async(&mut connection).await;
        }
        match answer {
            Ok(0) => Some(None),
            Ok(wait_ms) => Some(Some(Duration::from_millis(wait_ms.max(1) as u64))),
            Err(err) => {
                self.failed(&err);
                None
            }
        }
    }

    /// `<prefix>limit:<action>:<key>`. Login names (they may be email addresses) and long keys
    /// are hashed, so Redis holds no addresses in the clear and keys stay short.
    fn key(&self, action: Action, key: &str) -> String {
        let name = action.name();
        if key.len() <= 64 && action != Action::LoginName {
            return format!("{}limit:{name}:{key}", self.prefix);
        }
        let digest: String = Sha1::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}limit:{name}:#{digest}", self.prefix)
    }

    fn failed(&self, err: &redis::RedisError) {
        let now = Instant::now();
        *lock(&self.paused_until) = Some(now + PAUSE);
        let mut warned_at = lock(&self.warned_at);
        if warned_at.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
            *warned_at = Some(now);
            tracing::warn!(
                error = %err,
                "Redis unavailable for rate limits; each instance limits on its own until it is back"
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
