//! `Attachment` and `Track`: files as clients see them, with download URLs (signed and expiring,
//! so they work in `<img src>` and `<audio src>`).
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{Chat, User, chat::load_chat};
use crate::{
    domain::files,
    entity::{file, track},
    graphql::{context::ContextExt, loaders::UserId},
};

/// An uploaded file.
pub struct Attachment(pub file::Model);

/// A file attached to a message (or uploaded and waiting to be attached).
#[Object]
impl Attachment {
    /// Stable unique id; pass it in `sendMessage(attachmentIds:)`.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Where to download it (a signed link valid for about an hour; no header needed).
    async fn url(&self, ctx: &Context<'_>) -> String {
        files::url(ctx.app(), &self.0)
    }

    /// The original file name (sanitised; metadata only).
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }

    /// The type detected from the bytes.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }

    /// Size in bytes.
    async fn size(&self) -> i64 {
        self.0.size
    }
}

/// A music track and its file.
pub struct Track(pub track::Model, pub file::Model);

/// A track in the music library.
#[Object]
impl Track {
    /// Stable unique id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Title: the one given at upload, else the file's title tag, else the file name.
    async fn title(&self) -> &str {
        &self.0.title
    }

    /// Artist from the file's tags (ID3, Vorbis comments, MP4), if any.
    async fn artist(&self) -> Option<&str> {
        self.0.artist.as_deref()
    }

    /// Playable length in milliseconds, read from the file's headers (MP3, AAC/M4A,
    /// Ogg Vorbis/Opus, FLAC, WAV); null when it could not be read.
    async fn duration_ms(&self) -> Option<i64> {
        self.0.duration_ms
    }

    /// `durationMs` rounded to whole seconds; null when unknown.
    async fn duration_seconds(&self) -> Option<i32> {
        self.0.duration_seconds
    }

    /// Where to stream it (signed link; supports HTTP Range so players can seek).
    async fn url(&self, ctx: &Context<'_>) -> String {
        files::url(ctx.app(), &self.1)
    }

    /// The audio type detected from the bytes.
    async fn content_type(&self) -> &str {
        &self.1.content_type
    }

    /// Size in bytes.
    async fn size(&self) -> i64 {
        self.1.size
    }

    /// Who uploaded it.
    async fn uploader(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.uploader_id else {
            return Ok(None);
        };
        Ok(ctx.loader().load_one(UserId(id)).await?.map(User::new))
    }

    /// The room it belongs to, if any.
    async fn room(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Chat>> {
        match self.0.room_id {
            Some(id) => Ok(Some(load_chat(ctx, id).await?)),
            None => Ok(None),
        }
    }

    /// When it was uploaded.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}
