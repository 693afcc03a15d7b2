//! Uploads and downloads: receive a stream into a temporary file while counting bytes (stopping
//! at the limit), detect the type from the bytes, write the row, then move the file into place.
//! Downloads are allowed to whoever may see what the file belongs to, or to anyone holding an
//! unexpired signed link (so `<img src>` works without headers). What a file is (`detect`) and
//! how links are signed (`links`) are pure code in their own modules.
mod detect;
mod links;

use bytes::Bytes;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use self::detect::{Category, TextScan, accepted, detect};
pub use self::{
    detect::{Accept, Detected, kind_of},
    links::{Signed, absolute, file_id_of, signed_url, stored_path, url},
};
use super::{
    Viewer,
    access::{Need, chat_access},
};
use crate::{
    entity::{
        chat::ChatKind,
        file::{self, Purpose},
        message, user,
    },
    error::{AppError, AppResult},
    limits::Action,
    state::AppState,
    storage::{Storage, TempFile},
};

/// Bytes sniffed for the type.
const HEAD: usize = 8192;

/// An upload that has been received into a temporary file.
pub struct Received {
    temp: TempFile,
    size: u64,
    head: Vec<u8>,
    file_name: String,
    /// The whole file is UTF-8 text without NUL bytes.
    text: bool,
}

impl Received {
    /// A read-only handle on the whole file, from its start.
    pub async fn reopen(&self) -> std::io::Result<std::fs::File> {
        self.temp.reopen().await
    }
}

/// Streams `viewer`'s upload into a temporary file; more than `limit` bytes → 413, a broken
/// stream → 400. Every upload starts here, so the per-user upload limit is spent here, before
/// any byte is read. Nothing is left behind on failure.
pub async fn receive<S, E>(
    app: &AppState,
    viewer: &Viewer,
    mut stream: S,
    limit: usize,
    file_name: Option<&str>,
) -> AppResult<Received>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    app.limits.per_user(Action::Upload, viewer, 1).await?;
    let mut temp = app
        .storage
        .temp()
        .await
        .map_err(|e| AppError::internal(e))?;
    let mut size: u64 = 0;
    let mut head = Vec::with_capacity(1024);
    let mut text = TextScan::default();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| AppError::bad_input("file", format!("the upload was cut off: {e}")))?;
        app.metrics.upload_bytes.inc_by(chunk.len() as u64);
        size += chunk.len() as u64;
        if size > limit as u64 {
            return Err(AppError::PayloadTooLarge(format!(
                "file exceeds {limit} bytes"
            )));
        }
        if head.len() < HEAD {
            let take = (HEAD - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        text.feed(&chunk);
        temp.write(&chunk)
            .await
            .map_err(|e| AppError::internal(e))?;
    }
    temp.finish().await.map_err(|e| AppError::internal(e))?;
    Ok(Received {
        temp,
        size,
        head,
        file_name: sanitize_name(file_name.unwrap_or("file")),
        text: text.is_text(),
    })
}

/// Keeps only the last path component, drops control characters and leading dots, and bounds
/// the length; the result is metadata only, never a path.
pub fn sanitize_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    let cleaned: String = cleaned.chars().take(200).collect();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

/// Where a stored file belongs.
pub struct Owner {
    pub purpose: Purpose,
    pub chat_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
}

/// Checks the type against `accept` (415 otherwise), writes the row and moves the bytes into
/// place. Returns the row and the detected type.
pub async fn save(
    app: &AppState,
    viewer: &Viewer,
    received: Received,
    accept: Accept,
    owner: Owner,
) -> AppResult<(file::Model, Detected)> {
    let detected = sniff(&received, accept)?;
    let row = store(app, viewer, received, &detected, owner).await?;
    Ok((row, detected))
}

/// The type of a received file if `accept` takes it: 400 when empty, 415 otherwise.
pub fn sniff(received: &Received, accept: Accept) -> AppResult<Detected> {
    if received.size == 0 {
        return Err(AppError::bad_input("file", "the file is empty"));
    }
    detect(&received.head)
        // The head looked like text; so must the rest.
        .filter(|d| d.category != Category::Text || received.text)
        .filter(|d| accepted(accept, d))
        .ok_or_else(|| {
            AppError::UnsupportedMediaType("this type of file is not accepted here".into())
        })
}

/// Writes the row for a file whose type is settled (`sniff`) and moves the bytes into place.
#[tracing::instrument(
    skip_all,
    fields(
        user = %viewer.user_id,
        purpose = ?owner.purpose,
        chat = ?owner.chat_id,
        message = ?owner.message_id,
    )
)]
pub async fn store(
    app: &AppState,
    viewer: &Viewer,
    received: Received,
    detected: &Detected,
    owner: Owner,
) -> AppResult<file::Model> {
    let key = Storage::new_key();
    let row = file::ActiveModel {
        id: Set(Uuid::now_v7()),
        uploader_id: Set(Some(viewer.user_id)),
        purpose: Set(owner.purpose),
        storage_key: Set(key.clone()),
        file_name: Set(received.file_name),
        content_type: Set(detected.mime.clone()),
        size: Set(received.size as i64),
        chat_id: Set(owner.chat_id),
        message_id: Set(owner.message_id),
        created_at: Set(Utc::now()),
    }
    .insert(&app.db)
    .await?;
    if let Err(err) = app.storage.persist(received.temp, &key).await {
        if let Err(cleanup) = file::Entity::delete_by_id(row.id).exec(&app.db).await {
            AppError::from(cleanup).log();
        }
        return Err(AppError::internal(err));
    }
    Ok(row)
}

/// Deletes a file's row and bytes.
pub async fn remove(app: &AppState, file: &file::Model) -> AppResult<()> {
    file::Entity::delete_by_id(file.id).exec(&app.db).await?;
    app.storage.delete(&file.storage_key).await;
    Ok(())
}

/// Deletes the files attached to a deleted message, rows and bytes (in a bucket, the objects).
/// The message is gone already, so a failure here is logged, not answered.
pub async fn remove_attached(app: &AppState, message_id: Uuid) {
    let attached = file::Entity::find()
        .filter(file::Column::MessageId.eq(message_id))
        .all(&app.db)
        .await;
    let removed = match attached {
        Ok(attached) => {
            let mut result = Ok(());
            for file in &attached {
                result = result.and(remove(app, file).await);
            }
            result
        }
        Err(err) => Err(err.into()),
    };
    if let Err(err) = removed {
        err.log();
    }
}

/// Stores a new profile image for the caller (images only) and points `avatarUrl` at it; the
/// previous one is deleted.
pub async fn set_avatar(
    app: &AppState,
    viewer: &Viewer,
    received: Received,
) -> AppResult<user::Model> {
    let owner = Owner {
        purpose: Purpose::Avatar,
        chat_id: None,
        message_id: None,
    };
    let (file, _) = save(app, viewer, received, Accept::Images, owner).await?;
    let me = super::accounts::me(app, viewer).await?;
    let previous = me.avatar_url.as_deref().and_then(file_id_of);
    let mut model: user::ActiveModel = me.into();
    model.avatar_url = Set(Some(stored_path(file.id)));
    model.updated_at = Set(Utc::now());
    let updated = model.update(&app.db).await?;
    if let Some(old) = previous.and_then(|id| (id != file.id).then_some(id))
        && let Some(old) = file::Entity::find_by_id(old).one(&app.db).await?
    {
        remove(app, &old).await?;
    }
    Ok(updated)
}

/// Stores a new image for a group or room (admins) and points its `imageUrl` at it.
pub async fn set_chat_image(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    received: Received,
) -> AppResult<crate::entity::chat::Model> {
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    if access.chat.kind == ChatKind::Direct {
        return Err(AppError::bad_input("chat_id", "direct chats have no image"));
    }
    let owner = Owner {
        purpose: Purpose::ChatImage,
        chat_id: Some(chat_id),
        message_id: None,
    };
    let (file, _) = save(app, viewer, received, Accept::Images, owner).await?;
    let previous = access.chat.image_url.as_deref().and_then(file_id_of);
    let mut model: crate::entity::chat::ActiveModel = access.chat.into();
    model.image_url = Set(Some(stored_path(file.id)));
    super::autocommit(app, |db, outbox| {
        Box::pin(async move {
            let chat = model.update(db).await?;
            if let Some(old) = previous
                && let Some(old) = file::Entity::find_by_id(old).one(db).await?
            {
                remove(app, &old).await?;
            }
            let event = crate::events::Event::ChatUpdated { chat_id };
            outbox.record(crate::events::Topic::Chat(chat_id), event);
            Ok(chat)
        })
    })
    .await
}

/// Adds a file to one's own message (images and video only).
pub async fn attach_to_message(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    message_id: Uuid,
    received: Received,
) -> AppResult<file::Model> {
    let (message, _) = super::access::message_access(app, viewer, message_id, Need::Member).await?;
    if message.chat_id != chat_id {
        return Err(AppError::NotFound("message not found".into()));
    }
    if message.sender_id != Some(viewer.user_id) {
        return Err(AppError::Forbidden(
            "only the sender may add attachments".into(),
        ));
    }
    if message.deleted_at.is_some() {
        return Err(AppError::bad_input("message_id", "the message was deleted"));
    }
    let owner = Owner {
        purpose: Purpose::Attachment,
        chat_id: Some(chat_id),
        message_id: Some(message_id),
    };
    super::autocommit(app, |_, outbox| {
        Box::pin(async move {
            let (file, _) = save(app, viewer, received, Accept::Media, owner).await?;
            let event = crate::events::Event::MessageEdited { message };
            outbox.record(crate::events::Topic::Chat(chat_id), event);
            Ok(file)
        })
    })
    .await
}

/// The file behind a download, if the caller may have it: avatars for anyone, a valid signed
/// link for anyone, otherwise whoever may see what the file belongs to.
pub async fn authorize_download(
    app: &AppState,
    viewer: Option<&Viewer>,
    id: Uuid,
    signed: Option<Signed>,
) -> AppResult<file::Model> {
    let hidden = || AppError::NotFound("file not found".into());
    let file = file::Entity::find_by_id(id)
        .one(&app.db)
        .await?
        .ok_or_else(hidden)?;
    if let Some(message_id) = file.message_id {
        let message = message::Entity::find_by_id(message_id).one(&app.db).await?;
        if message.is_none_or(|m| m.deleted_at.is_some()) {
            return Err(hidden());
        }
    }
    if file.purpose == Purpose::Avatar {
        return Ok(file);
    }
    if let Some(signed) = signed {
        if !links::verify(app, file.id, &signed) {
            return Err(AppError::Forbidden(
                "this link is invalid or has expired".into(),
            ));
        }
        return Ok(file);
    }
    let viewer = viewer.ok_or_else(hidden)?;
    if file.uploader_id == Some(viewer.user_id) {
        return Ok(file);
    }
    let Some(chat_id) = file.chat_id else {
        return Err(hidden());
    };
    let access = chat_access(app, viewer, chat_id, Need::Read)
        .await
        .map_err(|_| hidden())?;
    let member_or_public = access.membership.is_some()
        || viewer.is_staff
        || (access.chat.kind == ChatKind::Room && !access.chat.is_private);
    if !member_or_public {
        return Err(hidden());
    }
    Ok(file)
}
