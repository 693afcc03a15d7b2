//! Seats of people who are gone. A participant whose last socket anywhere closed keeps their
//! seat for the grace period (`GOFTGU_VOICE_GRACE`) and loses it after, unless a socket opened
//! again meanwhile. The seat remembers since when its holder has been away (`away_since`): set
//! by `went_offline` when presence sees the last socket anywhere close, and by the sweep for
//! holders it finds offline without a mark (a seat taken over plain HTTP with no socket open,
//! users of an instance that crashed once their presence claims expired); cleared by the sweep
//! once they are back. Every instance sweeps (`sweep`, every half grace period); a seat is freed
//! by a conditional delete, and only the instance whose delete removed it announces `VoiceLeft`.
use std::{collections::HashSet, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use uuid::Uuid;

use super::left;
use crate::{
    domain::autocommit,
    entity::voice_participant::{self, Column},
    error::{AppError, AppResult},
    events::Topic,
    state::AppState,
};

/// How often an instance sweeps: half the grace period, between 0.5 s and 30 s.
pub fn sweep_every(app: &AppState) -> Duration {
    let half = Duration::from_millis(app.config.voice.grace_seconds.saturating_mul(500));
    half.clamp(Duration::from_millis(500), Duration::from_secs(30))
}

/// `user`'s last socket anywhere closed `at`: their seats start counting the grace period.
pub async fn went_offline(app: &AppState, user: Uuid, at: DateTime<Utc>) {
    let marked = voice_participant::Entity::update_many()
        .col_expr(Column::AwaySince, Expr::value(at))
        .filter(Column::UserId.eq(user))
        .exec(&app.db)
        .await;
    if let Err(err) = marked {
        AppError::from(err).log();
    }
}

/// One sweep: marks holders found offline, clears the mark of those back, frees the seats of
/// those away longer than the grace period. Skipped while presence cannot be read (a Redis
/// outage must not empty every room's voice); failures are logged and retried next time.
pub async fn sweep(app: &AppState) {
    if let Err(err) = try_sweep(app).await {
        err.log();
    }
}

async fn try_sweep(app: &AppState) -> AppResult<()> {
    let seats: Vec<(Uuid, Uuid, Option<DateTime<Utc>>)> = voice_participant::Entity::find()
        .select_only()
        .columns([Column::ChatId, Column::UserId, Column::AwaySince])
        .into_tuple()
        .all(&app.db)
        .await?;
    if seats.is_empty() {
        return Ok(());
    }
    let holders: Vec<Uuid> = seats
        .iter()
        .map(|s| s.1)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let Some(online) = app.presence.online_known(&holders).await else {
        return Ok(());
    };
    let now = Utc::now().trunc_subsecs(6);
    let grace = chrono::Duration::seconds(app.config.voice.grace_seconds as i64);
    let cutoff = now - grace;

    let back: Vec<Uuid> = seats
        .iter()
        .filter(|(_, user, away)| away.is_some() && online.contains(user))
        .map(|s| s.1)
        .collect();
    mark(app, back, None).await?;
    let unmarked: Vec<Uuid> = seats
        .iter()
        .filter(|(_, user, away)| away.is_none() && !online.contains(user))
        .map(|s| s.1)
        .collect();
    mark(app, unmarked, Some(now)).await?;

    let expired = seats
        .iter()
        .filter(|(_, user, away)| !online.contains(user) && away.is_some_and(|a| a <= cutoff));
    for &(room_id, user, _) in expired {
        free_if_still_away(app, room_id, user, cutoff).await?;
    }
    Ok(())
}

/// Sets (`Some`) or clears (`None`) the away mark of `users`' seats; setting leaves an earlier
/// mark as it is.
async fn mark(app: &AppState, users: Vec<Uuid>, since: Option<DateTime<Utc>>) -> AppResult<()> {
    if users.is_empty() {
        return Ok(());
    }
    let mut update = voice_participant::Entity::update_many()
        .col_expr(Column::AwaySince, Expr::value(since))
        .filter(Column::UserId.is_in(users));
    if since.is_some() {
        update = update.filter(Column::AwaySince.is_null());
    }
    update.exec(&app.db).await?;
    Ok(())
}

/// Frees the seat if it is still marked away since `cutoff` or earlier (not cleared by a
/// sweep that saw its holder back, not freed by another instance), and announces it then.
async fn free_if_still_away(
    app: &AppState,
    room_id: Uuid,
    user: Uuid,
    cutoff: DateTime<Utc>,
) -> AppResult<()> {
    autocommit(app, |db, outbox| {
        Box::pin(async move {
            let freed = voice_participant::Entity::delete_many()
                .filter(Column::ChatId.eq(room_id))
                .filter(Column::UserId.eq(user))
                .filter(Column::AwaySince.lte(cutoff))
                .exec(db)
                .await?;
            if freed.rows_affected > 0 {
                tracing::info!(room = %room_id, user = %user, "voice seat freed after the grace period");
                outbox.record(Topic::Chat(room_id), left(room_id, user));
            }
            Ok(())
        })
    })
    .await
}
