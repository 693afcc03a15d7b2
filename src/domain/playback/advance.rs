//! Playback moves on by itself: when a playing track runs out, the queue's next track starts
//! (or the room stops when the queue is empty), and a deleted track leaves the queue and the
//! player. Every instance sweeps for ended tracks; the compare-and-set on the state's version
//! lets exactly one of them advance each room, and only the winner announces it.
use chrono::Duration;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{State, announce, clock, head, load, store};
use crate::{
    domain::{Outbox, in_transaction},
    entity::{room_playback, room_queue, track},
    error::{AppError, AppResult},
    events::PlaybackReason,
    state::AppState,
};

/// Rooms advanced per sweep (the rest are next sweep's).
const BATCH: u64 = 50;
/// How far behind the end of a track the next one may be started. A sweep that runs late starts
/// the next track where it would be had it started on time, so every client agrees on it; after
/// a longer outage (every instance down) the next track starts from the beginning instead.
const CATCH_UP_MAX: Duration = Duration::seconds(5);

/// Advances every room whose track has ended. Errors are logged; the next sweep retries.
pub async fn sweep(app: &AppState) {
    let now = clock::now();
    let due = room_playback::Entity::find()
        .filter(room_playback::Column::IsPlaying.eq(true))
        .filter(room_playback::Column::EndsAt.lte(now))
        .order_by_asc(room_playback::Column::EndsAt)
        .limit(BATCH)
        .all(&app.db)
        .await;
    let due = match due {
        Ok(due) => due,
        Err(err) => return AppError::from(err).log(),
    };
    for ended in due {
        if let Err(err) = advance(app, ended).await {
            err.log();
        }
    }
}

/// Moves one ended room on, unless another instance (or an admin) changed it first.
async fn advance(app: &AppState, ended: State) -> AppResult<()> {
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let end = ended.ends_at.unwrap_or_else(clock::now);
            let at = end.max(clock::now() - CATCH_UP_MAX);
            let (next, popped) = next_in_queue(txn, &ended, at).await?;
            let next = State {
                changed_by: None,
                ..next
            };
            if !store(txn, &ended, &next).await? {
                return Ok(());
            }
            if let Some(entry) = popped {
                room_queue::Entity::delete_by_id(entry).exec(txn).await?;
            }
            let reason = if next.track_id.is_some() {
                PlaybackReason::Advanced
            } else {
                PlaybackReason::Ended
            };
            announce(outbox, &next, reason, None);
            Ok(())
        })
    })
    .await
}

/// The queue's first track playing from `at`, or stopped when the queue is empty.
async fn next_in_queue(
    db: &impl ConnectionTrait,
    prev: &State,
    at: chrono::DateTime<chrono::Utc>,
) -> AppResult<(State, Option<uuid::Uuid>)> {
    Ok(match head(db, prev.chat_id).await? {
        Some((entry, length)) => (
            clock::playing(prev, entry.track_id, length, 0, at),
            Some(entry.id),
        ),
        None => (clock::stopped(prev, at), None),
    })
}

/// A track is being deleted (inside the caller's transaction, before the row goes): it leaves
/// its room's queue, and if it is the one loaded, the queue's next track replaces it.
pub async fn track_removed(
    db: &impl ConnectionTrait,
    outbox: &mut Outbox<'_>,
    track: &track::Model,
    by: uuid::Uuid,
) -> AppResult<()> {
    let Some(room_id) = track.room_id else {
        return Ok(());
    };
    let dequeued = room_queue::Entity::delete_many()
        .filter(room_queue::Column::ChatId.eq(room_id))
        .filter(room_queue::Column::TrackId.eq(track.id))
        .exec(db)
        .await?
        .rows_affected;
    let prev = load(db, room_id).await?;
    if prev.track_id == Some(track.id) {
        let (next, popped) = next_in_queue(db, &prev, clock::now()).await?;
        let next = State {
            changed_by: Some(by),
            ..next
        };
        if !store(db, &prev, &next).await? {
            return Err(AppError::conflict(
                "id",
                "the room's playback changed meanwhile; try again",
            ));
        }
        if let Some(entry) = popped {
            room_queue::Entity::delete_by_id(entry).exec(db).await?;
        }
        announce(outbox, &next, PlaybackReason::TrackRemoved, Some(by));
    } else if dequeued > 0 {
        announce(outbox, &prev, PlaybackReason::QueueChanged, Some(by));
    }
    Ok(())
}
