//! Upload operations for the GraphQL multipart request spec (Apollo's upload link), and the
//! music library: `uploadFile`, `uploadAvatar`, `uploadTrack`, `tracks`, `track`, `deleteTrack`.
use std::sync::Arc;

use async_graphql::{Context, ID, Object, Upload};
use bytes::Bytes;
use futures_util::stream;
use tokio::io::AsyncReadExt;

use super::{
    context::ContextExt,
    types::{Attachment, Page, Track, User, cursor, parse_id},
};
use crate::{
    domain::{
        files::{self, Accept, Owner, Received},
        music,
    },
    entity::file::Purpose,
    error::AppError,
};

/// Copies a GraphQL upload (already spooled to a temporary file by the server) into storage's
/// temporary area, enforcing `limit` as it goes.
async fn receive(
    ctx: &Context<'_>,
    upload: &Upload,
    limit: usize,
) -> async_graphql::Result<Received> {
    let value = upload
        .value(ctx)
        .map_err(|e| AppError::bad_input("file", format!("could not read the upload: {e}")))?;
    let file = tokio::fs::File::from_std(value.content);
    let chunks = Box::pin(stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    }));
    let viewer = ctx.viewer()?;
    Ok(files::receive(ctx.app(), viewer, chunks, limit, Some(&value.filename)).await?)
}

/// File queries.
#[derive(Default)]
pub struct FileQuery;

#[Object]
impl FileQuery {
    /// Tracks I may see (of one room, or of every room I can read plus my own), newest first.
    async fn tracks(
        &self,
        ctx: &Context<'_>,
        room_id: Option<ID>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Track>> {
        let viewer = *ctx.viewer()?;
        let room = room_id
            .as_ref()
            .map(|id| parse_id("roomId", id))
            .transpose()?;
        let after = after
            .as_deref()
            .map(|c| cursor::decode_id("after", c))
            .transpose()?;
        let first = first.map_or(20, |f| u64::try_from(f).unwrap_or(0));
        let (tracks, has_next) = music::list(ctx.app(), &viewer, room, first, after).await?;
        let total = tracks.len() as u64;
        let items = tracks
            .into_iter()
            .map(|(t, f)| (cursor::id(t.id), Track(t, f)));
        let counter = Arc::new(move |_| Box::pin(async move { Ok(total) }) as _);
        Ok(Page::new(items, after.is_some(), has_next, counter))
    }

    /// One track.
    async fn track(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Track>> {
        let (track, file) = music::get(ctx.app(), ctx.viewer()?, parse_id("id", &id)?).await?;
        Ok(Some(Track(track, file)))
    }
}

/// File mutations.
#[derive(Default)]
pub struct FileMutation;

#[Object]
impl FileMutation {
    /// Uploads a file to attach with `sendMessage(attachmentIds:)` (images, video, audio,
    /// documents, text; at most 10 MB by default).
    async fn upload_file(
        &self,
        ctx: &Context<'_>,
        file: Upload,
    ) -> async_graphql::Result<Attachment> {
        let viewer = *ctx.viewer()?;
        let received = receive(ctx, &file, ctx.app().config.max_upload_bytes).await?;
        let owner = Owner {
            purpose: Purpose::Attachment,
            chat_id: None,
            message_id: None,
        };
        let (stored, _) = files::save(ctx.app(), &viewer, received, Accept::Any, owner).await?;
        Ok(Attachment(stored))
    }

    /// Sets my profile image (images only).
    async fn upload_avatar(&self, ctx: &Context<'_>, file: Upload) -> async_graphql::Result<User> {
        let viewer = *ctx.viewer()?;
        let received = receive(ctx, &file, ctx.app().config.max_upload_bytes).await?;
        Ok(User::own(
            files::set_avatar(ctx.app(), &viewer, received).await?,
        ))
    }

    /// Adds an audio track to the library, optionally in a room I am a member of.
    async fn upload_track(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        room_id: Option<ID>,
        title: Option<String>,
    ) -> async_graphql::Result<Track> {
        let viewer = *ctx.viewer()?;
        let room = room_id
            .as_ref()
            .map(|id| parse_id("roomId", id))
            .transpose()?;
        let received = receive(ctx, &file, ctx.app().config.max_music_bytes).await?;
        let (track, file) =
            music::upload(ctx.app(), &viewer, received, room, title.as_deref()).await?;
        Ok(Track(track, file))
    }

    /// Deletes a track and its file (its uploader or an admin of its room).
    async fn delete_track(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        music::delete(ctx.app(), ctx.viewer()?, parse_id("id", &id)?).await?;
        Ok(true)
    }
}
