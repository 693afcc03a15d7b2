//! Sends the pushes that are due, on every instance. A batch is claimed in one statement that
//! moves its rows a lease ahead (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so instances never
//! claim the same row; SQLite has one instance and takes its write turn), then each is sent:
//! unless its user has a live socket anywhere (presence, decided now), as an RFC 8291
//! `aes128gcm` payload with an RFC 8292 VAPID `Authorization`. A 2xx is done; 404 and 410 mean
//! the subscription is gone and it is removed; 429, 5xx and no answer are retried with
//! exponential backoff up to `GOFTGU_PUSH_MAX_ATTEMPTS`; anything else is given up. A claim whose
//! instance died is retried when its lease runs out.
use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Statement, sea_query::Expr,
};
use uuid::Uuid;
use web_push_native::{Auth, WebPushBuilder};

use super::endpoint;
use crate::{
    entity::{push_delivery, push_subscription},
    error::AppResult,
    state::AppState,
};

/// Most pushes claimed at once by one instance.
const BATCH: usize = 32;
/// How long a claim is this instance's before another may take it over.
const LEASE_MS: i64 = 60_000;
/// How long a push service keeps a push for a browser that is offline (the `TTL` header).
const TTL: Duration = Duration::from_secs(24 * 3600);
/// Lifetime of a VAPID token (RFC 8292 allows at most 24 h).
const VAPID_TTL_SECONDS: i64 = 12 * 3600;
/// The longest wait between two attempts.
const BACKOFF_MAX_MS: u64 = 3_600_000;
/// Longest wait for a push service's answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs for ever: looks for pushes that are due every `GOFTGU_PUSH_TICK_MS` and sends them.
pub async fn run(app: &AppState) {
    let client = match client(app) {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(error = %err, "web push is off: its HTTP client could not be built");
            return;
        }
    };
    let mut tick = tokio::time::interval(Duration::from_millis(app.config.push.tick_ms.max(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A full batch suggests more is due at once.
        while deliver_due(app, &client).await == BATCH {}
    }
}

/// The push client: no redirects (a push service answers, it does not send us elsewhere), no
/// proxy from the environment, host names resolved to public addresses only, bounded waits.
fn client(app: &AppState) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(endpoint::PublicOnly::new(&app.config.push)))
        .connect_timeout(Duration::from_secs(5))
        .timeout(TIMEOUT)
        .build()
}

/// Claims and sends one batch; how many were claimed.
async fn deliver_due(app: &AppState, client: &reqwest::Client) -> usize {
    let due = match claim(app).await {
        Ok(due) => due,
        Err(err) => {
            err.log();
            return 0;
        }
    };
    let claimed = due.len();
    if claimed == 0 {
        return 0;
    }
    if let Err(err) = send_all(app, client, due).await {
        err.log();
    }
    claimed
}

async fn send_all(
    app: &AppState,
    client: &reqwest::Client,
    due: Vec<push_delivery::Model>,
) -> AppResult<()> {
    let ids: Vec<Uuid> = due.iter().map(|d| d.subscription_id).collect();
    let subscriptions: HashMap<Uuid, push_subscription::Model> = push_subscription::Entity::find()
        .filter(push_subscription::Column::Id.is_in(ids))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let mut users: Vec<Uuid> = due.iter().map(|d| d.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let online = app.presence.online(&users).await;
    let sends = due.into_iter().map(|delivery| {
        let subscription = subscriptions.get(&delivery.subscription_id);
        let online = online.contains(&delivery.user_id);
        async move {
            let outcome = match subscription {
                // Removed meanwhile (the cascade takes the delivery with it).
                None => Outcome::Stale,
                // Taken over by someone else since it was enqueued.
                Some(s) if s.user_id != delivery.user_id => Outcome::Stale,
                Some(_) if online => Outcome::Online,
                Some(s) => send(app, client, s, &delivery.payload).await,
            };
            if let Err(err) = settle(app, &delivery, outcome).await {
                err.log();
            }
        }
    });
    futures_util::future::join_all(sends).await;
    Ok(())
}

/// What became of one attempt.
#[derive(Debug)]
enum Outcome {
    /// Accepted by the push service.
    Sent,
    /// Not sent: the user has a live socket.
    Online,
    /// Not sent: the subscription went, or changed hands, since it was enqueued.
    Stale,
    /// Refused for good (a 4xx other than 404, 410 and 429).
    Refused,
    /// The push service no longer knows the subscription (404, 410).
    Gone,
    /// Worth another try later (429, 5xx, no answer); at least `after` when the service said.
    Retry { after: Option<Duration> },
}

/// Claims what is due (at most a batch): its rows move a lease ahead, so no other worker takes
/// them meanwhile. Public for the test that races claims against each other.
pub async fn claim(app: &AppState) -> AppResult<Vec<push_delivery::Model>> {
    let now = Utc::now().timestamp_millis();
    // Most ticks find nothing: a read, without taking SQLite's write turn.
    let any: Option<Uuid> = push_delivery::Entity::find()
        .select_only()
        .column(push_delivery::Column::Id)
        .filter(push_delivery::Column::NextAttemptMs.lte(now))
        .limit(1)
        .into_tuple()
        .one(&app.db)
        .await?;
    if any.is_none() {
        return Ok(Vec::new());
    }
    let backend = app.db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "UPDATE push_deliveries SET next_attempt_ms = $1 WHERE id IN (\
               SELECT id FROM push_deliveries WHERE next_attempt_ms <= $2 \
               ORDER BY next_attempt_ms LIMIT $3 FOR UPDATE SKIP LOCKED) \
             RETURNING id, subscription_id, user_id, payload, attempts, next_attempt_ms"
        }
        _ => {
            "UPDATE push_deliveries SET next_attempt_ms = ? WHERE id IN (\
               SELECT id FROM push_deliveries WHERE next_attempt_ms <= ? \
               ORDER BY next_attempt_ms LIMIT ?) \
             RETURNING id, subscription_id, user_id, payload, attempts, next_attempt_ms"
        }
    };
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [(now + LEASE_MS).into(), now.into(), (BATCH as i64).into()],
    );
    let _turn = match &app.sqlite_writes {
        Some(writes) => Some(writes.lock().await),
        None => None,
    };
    Ok(push_delivery::Entity::find()
        .from_raw_sql(statement)
        .all(&app.db)
        .await?)
}

/// One POST to the push service.
async fn send(
    app: &AppState,
    client: &reqwest::Client,
    subscription: &push_subscription::Model,
    payload: &str,
) -> Outcome {
    let request = match request(app, subscription, payload) {
        Ok(request) => request,
        Err(reason) => {
            // The endpoint is no longer acceptable (the exempt hosts changed) or its keys are
            // unusable: no attempt can succeed.
            tracing::warn!(reason, subscription = %subscription.id, "push subscription dropped");
            return Outcome::Gone;
        }
    };
    match client.execute(request).await {
        Ok(answer) => {
            let status = answer.status();
            if status.is_success() {
                Outcome::Sent
            } else if status.as_u16() == 404 || status.as_u16() == 410 {
                Outcome::Gone
            } else if status.as_u16() == 429 || status.is_server_error() {
                let after = answer
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                Outcome::Retry { after }
            } else {
                tracing::warn!(%status, subscription = %subscription.id, "push refused");
                Outcome::Refused
            }
        }
        Err(err) => {
            tracing::debug!(error = %err, subscription = %subscription.id, "push not answered");
            Outcome::Retry { after: None }
        }
    }
}

/// The encrypted, signed request, or why none can be made.
fn request(
    app: &AppState,
    subscription: &push_subscription::Model,
    payload: &str,
) -> Result<reqwest::Request, &'static str> {
    let url = endpoint::check(&app.config.push, &subscription.endpoint)
        .map_err(|_| "endpoint no longer accepted")?;
    let uri: http::Uri = subscription
        .endpoint
        .parse()
        .map_err(|_| "endpoint is no URI")?;
    let (_, key) = endpoint::p256dh(&subscription.p256dh).map_err(|_| "bad p256dh")?;
    let (_, secret) = endpoint::auth(&subscription.auth).map_err(|_| "bad auth")?;
    let mut request = WebPushBuilder::new(uri, key, Auth::from(secret))
        .with_valid_duration(TTL)
        .build(payload.as_bytes().to_vec())
        .map_err(|_| "payload could not be encrypted")?;
    let authorization = app
        .vapid
        .authorization(
            &url.origin().ascii_serialization(),
            &app.config.push.vapid_subject,
            VAPID_TTL_SECONDS,
        )
        .map_err(|_| "VAPID token could not be signed")?;
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        authorization
            .parse()
            .map_err(|_| "VAPID token is no header value")?,
    );
    reqwest::Request::try_from(request).map_err(|_| "request could not be made")
}

/// Records the outcome: the delivery is deleted, or (retry) moved to its next attempt.
async fn settle(
    app: &AppState,
    delivery: &push_delivery::Model,
    outcome: Outcome,
) -> AppResult<()> {
    let delete = || async {
        push_delivery::Entity::delete_by_id(delivery.id)
            .exec(&app.db)
            .await
            .map(|_| ())
    };
    let label = match &outcome {
        Outcome::Sent => "sent",
        Outcome::Online => "online",
        Outcome::Stale => "stale",
        Outcome::Refused => "refused",
        Outcome::Gone => "gone",
        Outcome::Retry { .. } if delivery.attempts + 1 >= app.config.push.max_attempts => {
            "given_up"
        }
        Outcome::Retry { .. } => "retried",
    };
    app.metrics
        .pushes
        .get_or_create(&vec![("outcome", label.to_string())])
        .inc();
    match outcome {
        Outcome::Sent | Outcome::Online | Outcome::Stale | Outcome::Refused => delete().await?,
        Outcome::Gone => {
            push_subscription::Entity::delete_by_id(delivery.subscription_id)
                .exec(&app.db)
                .await?;
            delete().await?;
        }
        Outcome::Retry { after } => {
            let attempts = delivery.attempts + 1;
            if attempts >= app.config.push.max_attempts {
                tracing::warn!(attempts, subscription = %delivery.subscription_id, "push given up");
                delete().await?;
                return Ok(());
            }
            let wait = backoff(app.config.push.retry_base_ms, attempts)
                .max(after.map_or(0, |d| d.as_millis() as u64))
                .min(BACKOFF_MAX_MS);
            push_delivery::Entity::update_many()
                .col_expr(push_delivery::Column::Attempts, Expr::value(attempts))
                .col_expr(
                    push_delivery::Column::NextAttemptMs,
                    Expr::value(Utc::now().timestamp_millis() + wait as i64),
                )
                .filter(push_delivery::Column::Id.eq(delivery.id))
                .exec(&app.db)
                .await?;
        }
    }
    Ok(())
}

/// The wait after `attempts` failed attempts: `base`, doubled for each one after the first.
fn backoff(base_ms: u64, attempts: i32) -> u64 {
    let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
    base_ms
        .saturating_mul(1u64 << doublings)
        .min(BACKOFF_MAX_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(10_000, 1), 10_000);
        assert_eq!(backoff(10_000, 2), 20_000);
        assert_eq!(backoff(10_000, 4), 80_000);
        assert_eq!(backoff(10_000, 40), BACKOFF_MAX_MS);
        assert_eq!(backoff(u64::MAX, 3), BACKOFF_MAX_MS);
    }
}
