//! Listening together: each room has one playback state (a track, playing or paused, a position
//! at a server instant) and a queue. Room admins control it; `anyone_can_enqueue` lets members
//! add to the queue. Every change is a compare-and-set on the state's `version` inside one
//! transaction, so concurrent admins and the auto-advance of several instances never both win,
//! and each change publishes one `PlaybackChanged` after its commit.
mod advance;
pub mod clock;
mod queue;

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Select, Set,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Outbox, Viewer,
    access::{self, ChatAccess, Need},
    in_transaction,
};
use crate::{
    entity::{room_playback, room_queue, track},
    error::{AppError, AppResult},
    events::{Event, PlaybackReason, Topic},
    state::AppState,
};

pub use advance::{sweep, track_removed};
pub use queue::{enqueue, move_entry, remove_entry};

/// A room's stored playback state.
pub type State = room_playback::Model;

/// What an admin asks the room's player to do.
#[derive(Clone, Copy, Debug)]
pub enum Control {
    /// Play a track of the room from `position_ms`.
    Play {
        track: Uuid,
        position_ms: i64,
    },
    Pause,
    /// Continue the paused track; with nothing loaded, start the queue's first track.
    Resume,
    Seek {
        position_ms: i64,
    },
    /// The queue's next track now (nothing plays when the queue is empty).
    Skip,
}

/// The length of a track in ms, when it could be read from the file.
pub fn length_ms(track: &track::Model) -> Option<i64> {
    track.duration_ms.filter(|l| *l > 0)
}

/// The room and the caller's membership, checking `need`; other chats have no player.
async fn room_access(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    need: Need,
) -> AppResult<ChatAccess> {
    access::room_access(
        app,
        viewer,
        room_id,
        need,
        "only rooms have a player and a queue",
    )
    .await
}

/// A track that belongs to the room.
async fn room_track(db: &impl ConnectionTrait, room_id: Uuid, id: Uuid) -> AppResult<track::Model> {
    track::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|t| t.room_id == Some(room_id))
        .ok_or_else(|| AppError::NotFound("track not found in this room".into()))
}

/// The stored state, or an idle one when the room never played anything.
async fn load(db: &impl ConnectionTrait, room_id: Uuid) -> AppResult<State> {
    Ok(room_playback::Entity::find_by_id(room_id)
        .one(db)
        .await?
        .unwrap_or_else(|| clock::idle(room_id, clock::now())))
}

/// A room's queue entries, first to play first.
fn in_order(room_id: Uuid) -> Select<room_queue::Entity> {
    room_queue::Entity::find()
        .filter(room_queue::Column::ChatId.eq(room_id))
        .order_by_asc(room_queue::Column::Position)
        .order_by_asc(room_queue::Column::Id)
}

/// The queue, first to play first.
async fn entries(db: &impl ConnectionTrait, room_id: Uuid) -> AppResult<Vec<room_queue::Model>> {
    Ok(in_order(room_id).all(db).await?)
}

/// Stores `next` if the room's state is still `prev`; false when another writer changed it
/// first (the caller then writes nothing else and tries again or gives up).
async fn store(db: &impl ConnectionTrait, prev: &State, next: &State) -> AppResult<bool> {
    let row = room_playback::ActiveModel {
        chat_id: Set(next.chat_id),
        track_id: Set(next.track_id),
        is_playing: Set(next.is_playing),
        position_ms: Set(next.position_ms),
        updated_at: Set(next.updated_at),
        ends_at: Set(next.ends_at),
        version: Set(next.version),
        changed_by: Set(next.changed_by),
    };
    let written = if prev.version == 0 {
        room_playback::Entity::insert(row)
            .on_conflict(
                OnConflict::column(room_playback::Column::ChatId)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?
    } else {
        room_playback::Entity::update_many()
            .set(row)
            .filter(room_playback::Column::ChatId.eq(prev.chat_id))
            .filter(room_playback::Column::Version.eq(prev.version))
            .exec(db)
            .await?
            .rows_affected
    };
    Ok(written == 1)
}

/// Records the change for the room's subscribers.
fn announce(outbox: &mut Outbox<'_>, state: &State, reason: PlaybackReason, by: Option<Uuid>) {
    outbox.record(
        Topic::Chat(state.chat_id),
        Event::PlaybackChanged {
            chat_id: state.chat_id,
            playback: state.clone(),
            reason,
            by,
        },
    );
}

/// The queue's first entry and its track's length, if any.
async fn head(
    db: &impl ConnectionTrait,
    room_id: Uuid,
) -> AppResult<Option<(room_queue::Model, Option<i64>)>> {
    let Some(entry) = in_order(room_id).one(db).await? else {
        return Ok(None);
    };
    let length = track::Entity::find_by_id(entry.track_id)
        .one(db)
        .await?
        .as_ref()
        .and_then(length_ms);
    Ok(Some((entry, length)))
}

/// Applies an admin's control. A control that changes nothing (pausing what is paused) returns
/// the state as it is and announces nothing.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id, ?control))]
pub async fn control(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    control: Control,
) -> AppResult<State> {
    room_access(app, viewer, room_id, Need::Admin).await?;
    let by = viewer.user_id;
    for _ in 0..3 {
        let outcome = in_transaction(app, |txn, outbox| {
            Box::pin(async move {
                let prev = load(txn, room_id).await?;
                let Some((next, reason, popped)) = apply(txn, &prev, control).await? else {
                    return Ok(Some(prev));
                };
                let next = State {
                    changed_by: Some(by),
                    ..next
                };
                if !store(txn, &prev, &next).await? {
                    return Ok(None);
                }
                if let Some(entry) = popped {
                    room_queue::Entity::delete_by_id(entry).exec(txn).await?;
                }
                announce(outbox, &next, reason, Some(by));
                Ok(Some(next))
            })
        })
        .await?;
        if let Some(state) = outcome {
            return Ok(state);
        }
    }
    Err(AppError::conflict(
        "roomId",
        "the room's playback kept changing meanwhile; try again",
    ))
}

/// The next state for `control`, why, and the queue entry it consumed; None when nothing changes.
async fn apply(
    db: &impl ConnectionTrait,
    prev: &State,
    control: Control,
) -> AppResult<Option<(State, PlaybackReason, Option<Uuid>)>> {
    let at = clock::now();
    let room_id = prev.chat_id;
    // The loaded track's length, for the controls that keep it.
    let current_length = async || -> AppResult<Option<i64>> {
        let Some(id) = prev.track_id else {
            return Ok(None);
        };
        Ok(track::Entity::find_by_id(id)
            .one(db)
            .await?
            .as_ref()
            .and_then(length_ms))
    };
    let position = |field: &str, position_ms: i64, length: Option<i64>| {
        if position_ms < 0 || length.is_some_and(|l| position_ms > l) {
            return Err(AppError::bad_input(
                field,
                "positionMs must be between 0 and the track's length",
            ));
        }
        Ok(position_ms)
    };
    let nothing = || AppError::conflict("roomId", "nothing is playing in this room");
    Ok(match control {
        Control::Play { track, position_ms } => {
            let track = room_track(db, room_id, track).await?;
            let length = length_ms(&track);
            let position_ms = position("positionMs", position_ms, length)?;
            Some((
                clock::playing(prev, track.id, length, position_ms, at),
                PlaybackReason::Played,
                None,
            ))
        }
        Control::Pause => {
            prev.track_id.ok_or_else(nothing)?;
            if prev.is_playing {
                Some((
                    clock::paused(prev, current_length().await?, at),
                    PlaybackReason::Paused,
                    None,
                ))
            } else {
                None
            }
        }
        Control::Resume => match prev.track_id {
            Some(_) if prev.is_playing => None,
            Some(track) => Some((
                clock::playing(prev, track, current_length().await?, prev.position_ms, at),
                PlaybackReason::Resumed,
                None,
            )),
            None => {
                let (entry, length) = head(db, room_id)
                    .await?
                    .ok_or_else(|| AppError::conflict("roomId", "the queue is empty"))?;
                Some((
                    clock::playing(prev, entry.track_id, length, 0, at),
                    PlaybackReason::Resumed,
                    Some(entry.id),
                ))
            }
        },
        Control::Seek { position_ms } => {
            prev.track_id.ok_or_else(nothing)?;
            let length = current_length().await?;
            let position_ms = position("positionMs", position_ms, length)?;
            Some((
                clock::seeked(prev, length, position_ms, at),
                PlaybackReason::Seeked,
                None,
            ))
        }
        Control::Skip => Some(match head(db, room_id).await? {
            Some((entry, length)) => (
                clock::playing(prev, entry.track_id, length, 0, at),
                PlaybackReason::Skipped,
                Some(entry.id),
            ),
            None => (clock::stopped(prev, at), PlaybackReason::Skipped, None),
        }),
    })
}
