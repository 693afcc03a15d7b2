//! A room's queue: what plays next. Admins manage it; when the room allows it
//! (`anyone_can_enqueue`), any member may add tracks and remove the ones they added.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{Need, announce, entries, load, room_access, room_track};
use crate::{
    domain::{Viewer, access::ChatAccess, in_transaction},
    entity::room_queue,
    error::{AppError, AppResult},
    events::PlaybackReason,
    state::AppState,
};

/// Longest queue a room may have.
pub const QUEUE_MAX: usize = 100;

fn is_admin(access: &ChatAccess) -> bool {
    access.role().is_some_and(|r| r.is_admin())
}

/// Adds a track of the room to the end of its queue; the entry and its index in the queue.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id, track = %track_id))]
pub async fn enqueue(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    track_id: Uuid,
) -> AppResult<(room_queue::Model, usize)> {
    let access = room_access(app, viewer, room_id, Need::Member).await?;
    if !is_admin(&access) && !access.chat.anyone_can_enqueue {
        return Err(AppError::Forbidden(
            "only the room's admins may add to its queue".into(),
        ));
    }
    let by = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            room_track(txn, room_id, track_id).await?;
            let queue = entries(txn, room_id).await?;
            if queue.len() >= QUEUE_MAX {
                return Err(AppError::bad_input(
                    "roomId",
                    format!("the queue holds at most {QUEUE_MAX} tracks"),
                ));
            }
            let entry = room_queue::ActiveModel {
                id: Set(Uuid::now_v7()),
                chat_id: Set(room_id),
                track_id: Set(track_id),
                position: Set(queue.last().map_or(0, |e| e.position + 1)),
                added_by: Set(Some(by)),
                added_at: Set(Utc::now()),
            }
            .insert(txn)
            .await?;
            let state = load(txn, room_id).await?;
            announce(outbox, &state, PlaybackReason::QueueChanged, Some(by));
            Ok((entry, queue.len()))
        })
    })
    .await
}

/// An entry of the room's queue.
async fn entry_of(
    db: &impl sea_orm::ConnectionTrait,
    room_id: Uuid,
    entry_id: Uuid,
) -> AppResult<room_queue::Model> {
    room_queue::Entity::find_by_id(entry_id)
        .filter(room_queue::Column::ChatId.eq(room_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("queue entry not found".into()))
}

/// Takes an entry out of the queue: admins, or the member who added it.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id, entry = %entry_id))]
pub async fn remove_entry(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    entry_id: Uuid,
) -> AppResult<()> {
    let access = room_access(app, viewer, room_id, Need::Member).await?;
    let admin = is_admin(&access);
    let by = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let entry = entry_of(txn, room_id, entry_id).await?;
            if !admin && entry.added_by != Some(by) {
                return Err(AppError::Forbidden(
                    "only the room's admins or whoever added it may remove a queued track".into(),
                ));
            }
            room_queue::Entity::delete_by_id(entry.id).exec(txn).await?;
            let state = load(txn, room_id).await?;
            announce(outbox, &state, PlaybackReason::QueueChanged, Some(by));
            Ok(())
        })
    })
    .await
}

/// Moves an entry to `index` (0 is next to play; past the end means last), admins only.
/// Returns the queue in its new order.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id, entry = %entry_id))]
pub async fn move_entry(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    entry_id: Uuid,
    index: i64,
) -> AppResult<Vec<room_queue::Model>> {
    room_access(app, viewer, room_id, Need::Admin).await?;
    if index < 0 {
        return Err(AppError::bad_input("index", "index must be 0 or more"));
    }
    let by = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let mut queue = entries(txn, room_id).await?;
            let from = queue
                .iter()
                .position(|e| e.id == entry_id)
                .ok_or_else(|| AppError::NotFound("queue entry not found".into()))?;
            let entry = queue.remove(from);
            let to = (index as usize).min(queue.len());
            queue.insert(to, entry);
            for (position, entry) in queue.iter_mut().enumerate() {
                let position = position as i64;
                if entry.position != position {
                    let mut row: room_queue::ActiveModel = entry.clone().into();
                    row.position = Set(position);
                    row.update(txn).await?;
                    entry.position = position;
                }
            }
            let state = load(txn, room_id).await?;
            announce(outbox, &state, PlaybackReason::QueueChanged, Some(by));
            Ok(queue)
        })
    })
    .await
}
