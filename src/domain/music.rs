//! The music library: audio tracks, optionally in a room. A track is visible to whoever may read
//! its room (and always to its uploader); the uploader or an admin of the room may delete it,
//! which removes its file too.
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
    files::{self, Accept, Owner, Received},
    in_transaction,
    paging::fetch_page,
    playback, validate,
};
use crate::{
    entity::{
        chat::{self, ChatKind},
        chat_member,
        file::{self, Purpose},
        track,
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// Longest title.
const TITLE_MAX: usize = 200;
/// Largest page of tracks.
pub const PAGE_MAX: u64 = 100;

/// Stores an uploaded audio file as a track (in `room_id` if given: members only).
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = ?room_id))]
pub async fn upload(
    app: &AppState,
    viewer: &Viewer,
    received: Received,
    room_id: Option<Uuid>,
    title: Option<&str>,
) -> AppResult<(track::Model, file::Model)> {
    if let Some(room_id) = room_id {
        let access = chat_access(app, viewer, room_id, Need::Member).await?;
        if access.chat.kind != ChatKind::Room {
            return Err(AppError::bad_input("room_id", "room_id must be a room"));
        }
    }
    let title = title
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    if title
        .as_ref()
        .is_some_and(|t| t.chars().count() > TITLE_MAX)
    {
        return Err(AppError::bad_input(
            "title",
            format!("title must be at most {TITLE_MAX} characters long"),
        ));
    }
    let duration = wav_duration(received.head());
    let owner = Owner {
        purpose: Purpose::Track,
        chat_id: room_id,
        message_id: None,
    };
    let (file, _) = files::save(app, viewer, received, Accept::Audio, owner).await?;
    let title = title.unwrap_or_else(|| {
        let name = file
            .file_name
            .rsplit_once('.')
            .map_or(file.file_name.as_str(), |(stem, _)| stem);
        name.chars().take(TITLE_MAX).collect()
    });
    let track = track::ActiveModel {
        id: Set(Uuid::now_v7()),
        file_id: Set(file.id),
        room_id: Set(room_id),
        uploader_id: Set(Some(viewer.user_id)),
        title: Set(title),
        duration_seconds: Set(duration),
        created_at: Set(Utc::now()),
    }
    .insert(&app.db)
    .await;
    match track {
        Ok(track) => Ok((track, file)),
        Err(err) => {
            if let Err(cleanup) = files::remove(app, &file).await {
                cleanup.log();
            }
            Err(err.into())
        }
    }
}

/// One track the caller may see, with its file.
pub async fn get(
    app: &AppState,
    viewer: &Viewer,
    id: Uuid,
) -> AppResult<(track::Model, file::Model)> {
    let hidden = || AppError::NotFound("track not found".into());
    let track = track::Entity::find_by_id(id)
        .one(&app.db)
        .await?
        .ok_or_else(hidden)?;
    if track.uploader_id != Some(viewer.user_id) {
        match track.room_id {
            Some(room) => {
                chat_access(app, viewer, room, Need::Read)
                    .await
                    .map_err(|_| hidden())?;
            }
            None => return Err(hidden()),
        }
    }
    let file = file::Entity::find_by_id(track.file_id)
        .one(&app.db)
        .await?
        .ok_or_else(hidden)?;
    Ok((track, file))
}

/// Tracks the caller may see (of one room, or of every room they can read plus their own),
/// newest first; `after` is the id of the last track of the previous page.
pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    room_id: Option<Uuid>,
    first: u64,
    after: Option<Uuid>,
) -> AppResult<(Vec<(track::Model, file::Model)>, bool)> {
    validate::page_size("first", first as i64, PAGE_MAX)?;
    let mut query = track::Entity::find();
    match room_id {
        Some(room) => {
            chat_access(app, viewer, room, Need::Read).await?;
            query = query.filter(track::Column::RoomId.eq(room));
        }
        None if viewer.is_staff => {}
        None => {
            let mine = Query::select()
                .column(chat_member::Column::ChatId)
                .from(chat_member::Entity)
                .and_where(Expr::col(chat_member::Column::UserId).eq(viewer.user_id))
                .to_owned();
            let public = Query::select()
                .column(chat::Column::Id)
                .from(chat::Entity)
                .and_where(Expr::col(chat::Column::Kind).eq(ChatKind::Room))
                .and_where(Expr::col(chat::Column::IsPrivate).eq(false))
                .to_owned();
            query = query.filter(
                Condition::any()
                    .add(track::Column::UploaderId.eq(viewer.user_id))
                    .add(track::Column::RoomId.in_subquery(mine))
                    .add(track::Column::RoomId.in_subquery(public)),
            );
        }
    }
    if let Some(after) = after {
        query = query.filter(track::Column::Id.lt(after));
    }
    let (tracks, has_next) =
        fetch_page(query.order_by_desc(track::Column::Id), first, &app.db).await?;
    let files = file::Entity::find()
        .filter(file::Column::Id.is_in(tracks.iter().map(|t| t.file_id).collect::<Vec<_>>()))
        .all(&app.db)
        .await?;
    let pairs = tracks
        .into_iter()
        .filter_map(|t| {
            files
                .iter()
                .find(|f| f.id == t.file_id)
                .cloned()
                .map(|f| (t, f))
        })
        .collect();
    Ok((pairs, has_next))
}

/// Deletes a track and its file: its uploader, or an admin of its room.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, track = %id))]
pub async fn delete(app: &AppState, viewer: &Viewer, id: Uuid) -> AppResult<()> {
    let (track, file) = get(app, viewer, id).await?;
    let is_uploader = track.uploader_id == Some(viewer.user_id);
    let is_admin = match track.room_id {
        Some(room) => chat_access(app, viewer, room, Need::Admin).await.is_ok(),
        None => false,
    };
    if !is_uploader && !is_admin {
        return Err(AppError::Forbidden(
            "only the uploader or a room admin may delete a track".into(),
        ));
    }
    let by = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            playback::track_removed(txn, outbox, &track, by).await?;
            track::Entity::delete_by_id(track.id).exec(txn).await?;
            Ok(())
        })
    })
    .await?;
    files::remove(app, &file).await
}

/// The duration of a PCM WAV file from its header (other formats: unknown).
fn wav_duration(head: &[u8]) -> Option<i32> {
    if head.len() < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return None;
    }
    let mut at = 12;
    let mut byte_rate = None;
    while at + 8 <= head.len() {
        let id = &head[at..at + 4];
        let size = u32::from_le_bytes(head[at + 4..at + 8].try_into().ok()?) as usize;
        if id == b"fmt " && at + 20 <= head.len() {
            byte_rate = Some(u32::from_le_bytes(head[at + 16..at + 20].try_into().ok()?));
        }
        if id == b"data" {
            let rate = byte_rate.filter(|r| *r > 0)?;
            return Some((size as u64 / rate as u64) as i32);
        }
        at += 8 + size + (size % 2);
    }
    None
}
