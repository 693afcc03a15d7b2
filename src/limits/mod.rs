//! Rate limits: the one place that decides whether a key (a user, a client address, a login
//! name) may do an action now, and when not, how long it has to wait. Every budget is a GCRA
//! bucket: `burst` actions at once, then one every `60 s / per_minute`. With Redis configured all
//! instances spend from one shared budget (`shared`); without Redis, or while it is unreachable,
//! each instance keeps its own (governor). The domain calls this at its entry points.
mod shared;

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::{
    auth::Viewer,
    config::Config,
    error::{AppError, AppResult},
    events::RedisLink,
};

/// What is being limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Messages sent (per user).
    Send,
    /// Reactions toggled (per user).
    Reaction,
    /// setTyping calls (per user).
    Typing,
    /// Files uploaded (per user).
    Upload,
    /// inviteToRoom, addMembers and createGroup-with-members calls (per user).
    Invite,
    /// Accounts registered (per client address).
    Register,
    /// Login attempts (per client address).
    Login,
    /// Login attempts (per login name).
    LoginName,
    /// Refresh tokens traded in (per client address).
    Refresh,
    /// WebRTC signals sent and voice state updates (per user).
    Signal,
}

impl Action {
    const ALL: [Action; 10] = [
        Self::Send,
        Self::Reaction,
        Self::Typing,
        Self::Upload,
        Self::Invite,
        Self::Register,
        Self::Login,
        Self::LoginName,
        Self::Refresh,
        Self::Signal,
    ];

    /// Part of the Redis key.
    fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Reaction => "reaction",
            Self::Typing => "typing",
            Self::Upload => "upload",
            Self::Invite => "invite",
            Self::Register => "register",
            Self::Login => "login",
            Self::LoginName => "login-name",
            Self::Refresh => "refresh",
            Self::Signal => "signal",
        }
    }

    /// What the client is told.
    fn refusal(self) -> &'static str {
        match self {
            Self::Send => "too many messages",
            Self::Reaction => "too many reactions",
            Self::Typing => "too many typing updates",
            Self::Upload => "too many uploads",
            Self::Invite => "too many invitations",
            Self::Register => "too many accounts registered from this address",
            Self::Login => "too many login attempts from this address",
            Self::LoginName => "too many login attempts for this account",
            Self::Refresh => "too many token refreshes from this address",
            Self::Signal => "too many voice signals",
        }
    }

    /// The configured budget; `None` when the limit is off (a rate of 0).
    fn rule(self, config: &Config) -> Option<Rule> {
        let l = &config.limits;
        let (per_minute, burst) = match self {
            Self::Send => (l.send_per_minute, l.send_burst),
            Self::Reaction => (l.reactions_per_minute, l.reactions_burst),
            Self::Typing => (l.typing_per_minute, l.typing_burst),
            Self::Upload => (l.uploads_per_minute, l.uploads_burst),
            Self::Invite => (l.invites_per_minute, l.invites_burst),
            Self::Register => (l.register_per_minute, l.register_burst),
            Self::Login => (l.login_per_minute, l.login_burst),
            Self::Refresh => (l.refresh_per_minute, l.refresh_burst),
            Self::Signal => (l.signals_per_minute, l.signals_burst),
            Self::LoginName => (
                config.login_attempts_per_minute,
                config.login_attempts_per_minute,
            ),
        };
        Some(Rule {
            per_minute: NonZeroU32::new(per_minute)?,
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
        })
    }
}

/// One budget: `burst` at once, refilled at `per_minute`.
#[derive(Clone, Copy, Debug)]
struct Rule {
    per_minute: NonZeroU32,
    burst: NonZeroU32,
}

/// One action's rule and this instance's buckets for it.
struct Bucket {
    rule: Rule,
    local: DefaultKeyedRateLimiter<String>,
}

/// Every limit of the server; kept in the application state.
pub struct Limits {
    buckets: Vec<(Action, Bucket)>,
    shared: Option<shared::Shared>,
}

impl Limits {
    /// The limits from the configuration, shared through `redis` when given.
    pub fn new(config: &Config, redis: Option<&RedisLink>) -> Self {
        let buckets = Action::ALL
            .into_iter()
            .filter_map(|action| {
                let rule = action.rule(config)?;
                let quota = Quota::per_minute(rule.per_minute).allow_burst(rule.burst);
                let local = RateLimiter::keyed(quota);
                Some((action, Bucket { rule, local }))
            })
            .collect();
        Self {
            buckets,
            shared: redis.map(shared::Shared::new),
        }
    }

    /// Spends `cost` from `key`'s budget for `action`, or refuses with `RATE_LIMITED` and the
    /// wait. A cost above the burst is charged as the whole burst, so it can pass once full.
    pub async fn spend(&self, action: Action, key: &str, cost: u32) -> AppResult<()> {
        let Some((_, bucket)) = self.buckets.iter().find(|(a, _)| *a == action) else {
            return Ok(()); // this limit is off
        };
        let cost = NonZeroU32::new(cost.min(bucket.rule.burst.get())).unwrap_or(NonZeroU32::MIN);
        let shared = match &self.shared {
            Some(shared) => shared.spend(action, key, bucket.rule, cost).await,
            None => None,
        };
        let wait = match shared {
            Some(wait) => wait,
            None => local_spend(&bucket.local, key, cost),
        };
        match wait {
            None => Ok(()),
            Some(wait) => Err(AppError::rate_limited(action.refusal(), wait)),
        }
    }

    /// Spends from a user's budget.
    pub async fn per_user(&self, action: Action, viewer: &Viewer, cost: u32) -> AppResult<()> {
        self.spend(action, &viewer.user_id.to_string(), cost).await
    }

    /// Spends one from a client address's budget (IPv6 clients by their /64 network, which is
    /// what one subscriber gets).
    pub async fn per_address(&self, action: Action, client: Option<IpAddr>) -> AppResult<()> {
        let key = match client.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
            Some(ip) => ip.to_string(),
            None => "unknown".into(),
        };
        self.spend(action, &key, 1).await
    }

    /// Forgets local buckets that are full again, so the maps stay small.
    pub fn retain_recent(&self) {
        for (_, bucket) in &self.buckets {
            bucket.local.retain_recent();
        }
    }
}

/// This instance's own decision: `None` when allowed, else the wait.
fn local_spend(
    limiter: &DefaultKeyedRateLimiter<String>,
    key: &str,
    cost: NonZeroU32,
) -> Option<Duration> {
    match limiter.check_key_n(&key.to_string(), cost) {
        Ok(Ok(())) => None,
        Ok(Err(not_until)) => Some(not_until.wait_time_from(limiter.clock().now())),
        // Cannot happen (cost is capped at the burst); refuse for one refill rather than panic.
        Err(_) => Some(Duration::from_secs(1)),
    }
}

/// Where a request came from, as the transport found it (`None` when unknown); carried into
/// GraphQL as request data for the per-address limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);
