//! The music library: audio tracks, optionally in a room. A track is visible to whoever may read
//! its room (and always to its uploader); the uploader or an admin of the room may delete it,
//! which removes its file too. Duration, title and artist come from the file's own bytes
//! (`metadata`).
mod metadata;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set,
    sea_query::{Expr, ExprTrait, Query},
};
use uuid::Uuid;

use self::metadata::AudioMeta;
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
    // An MP4 with a generic brand sniffs as video: its tracks decide, once read.
    let (detected, mp4_unchecked) = match files::sniff(&received, Accept::Audio) {
        Ok(detected) => (detected, false),
        Err(refused) => {
            let mp4 = files::sniff(&received, Accept::Media)
                .ok()
                .and_then(|d| d.as_audio_only_mp4());
            (mp4.ok_or(refused)?, true)
        }
    };
    let meta = read_metadata(&received).await;
    if mp4_unchecked && !meta.audio_only {
        return Err(AppError::UnsupportedMediaType(
            "this type of file is not accepted here (an MP4 with video is not a track)".into(),
        ));
    }
    let owner = Owner {
        purpose: Purpose::Track,
        chat_id: room_id,
        message_id: None,
    };
    let file = files::store(app, viewer, received, &detected, owner).await?;
    let title = title.or(meta.title).unwrap_or_else(|| {
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
        duration_seconds: Set(meta.duration_ms.map(rounded_seconds)),
        duration_ms: Set(meta.duration_ms),
        artist: Set(meta.artist),
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

/// Reads duration and tags from the received bytes on a blocking thread; nothing when the file
/// cannot be read (it still uploads, without them).
async fn read_metadata(received: &Received) -> AudioMeta {
    let file = match received.reopen().await {
        Ok(file) => file,
        Err(err) => {
            tracing::warn!(error = %err, "could not reopen an upload for its metadata");
            return AudioMeta::default();
        }
    };
    match tokio::task::spawn_blocking(move || metadata::read(file)).await {
        Ok(meta) => meta,
        Err(err) => {
            tracing::warn!(error = %err, "the audio metadata reader failed");
            AudioMeta::default()
        }
    }
}

/// Whole seconds, rounded to the nearest (`durationSeconds` beside `durationMs`).
fn rounded_seconds(ms: i64) -> i32 {
    i32::try_from((ms + 500) / 1000).unwrap_or(i32::MAX)
}
