//! Listening together: `serverTime`, and the room player's controls (`playTrack`,
//! `pausePlayback`, `resumePlayback`, `seekPlayback`, `skipTrack`) and queue (`enqueueTrack`,
//! `removeFromQueue`, `moveInQueue`). The rules are `domain::playback`.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    loaders::Source,
    types::{Playback, QueueEntry, parse_id},
};
use crate::domain::playback::{self, Control, clock};

/// The clock query.
#[derive(Default)]
pub struct PlaybackQuery;

#[Object]
impl PlaybackQuery {
    /// The server's clock (ms precision). A client that measures the round trip can estimate
    /// its offset as `serverTime - (sent + received) / 2` and compute playback positions with it.
    async fn server_time(&self) -> DateTime<Utc> {
        clock::now()
    }
}

/// Player and queue mutations.
#[derive(Default)]
pub struct PlaybackMutation;

/// Applies a control and renders the resulting state.
async fn control(
    ctx: &Context<'_>,
    room_id: &ID,
    control: Control,
) -> async_graphql::Result<Option<Playback>> {
    let room = parse_id("roomId", room_id)?;
    let state = playback::control(ctx.app(), ctx.viewer()?, room, control).await?;
    Ok(Playback::new(state, Source::default()))
}

#[Object]
impl PlaybackMutation {
    /// Plays a track of the room for everyone, from `positionMs` (default 0). Room admins.
    async fn play_track(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        track_id: ID,
        #[graphql(default = 0)] position_ms: i64,
    ) -> async_graphql::Result<Option<Playback>> {
        let track = parse_id("trackId", &track_id)?;
        control(ctx, &room_id, Control::Play { track, position_ms }).await
    }

    /// Pauses the room's track where it is. Room admins.
    async fn pause_playback(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> async_graphql::Result<Option<Playback>> {
        control(ctx, &room_id, Control::Pause).await
    }

    /// Resumes the paused track; with nothing loaded, starts the queue's first track. Room admins.
    async fn resume_playback(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> async_graphql::Result<Option<Playback>> {
        control(ctx, &room_id, Control::Resume).await
    }

    /// Moves the room's track to `positionMs`, playing or paused as it was. Room admins.
    async fn seek_playback(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        position_ms: i64,
    ) -> async_graphql::Result<Option<Playback>> {
        control(ctx, &room_id, Control::Seek { position_ms }).await
    }

    /// Starts the queue's next track now (with an empty queue, nothing plays). Room admins.
    async fn skip_track(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> async_graphql::Result<Option<Playback>> {
        control(ctx, &room_id, Control::Skip).await
    }

    /// Adds a track of the room to the end of its queue: admins, or any member when the room's
    /// `anyoneCanEnqueue` is on. At most 100 tracks wait.
    async fn enqueue_track(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        track_id: ID,
    ) -> async_graphql::Result<QueueEntry> {
        let room = parse_id("roomId", &room_id)?;
        let track = parse_id("trackId", &track_id)?;
        let (entry, index) = playback::enqueue(ctx.app(), ctx.viewer()?, room, track).await?;
        Ok(QueueEntry {
            entry,
            index,
            source: Source::default(),
        })
    }

    /// Takes an entry out of the queue: admins, or the member who added it.
    async fn remove_from_queue(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        entry_id: ID,
    ) -> async_graphql::Result<bool> {
        let room = parse_id("roomId", &room_id)?;
        let entry = parse_id("entryId", &entry_id)?;
        playback::remove_entry(ctx.app(), ctx.viewer()?, room, entry).await?;
        Ok(true)
    }

    /// Moves a queue entry to `index` (0 plays next; past the end means last). Room admins.
    /// Returns the queue in its new order.
    async fn move_in_queue(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        entry_id: ID,
        index: i64,
    ) -> async_graphql::Result<Vec<QueueEntry>> {
        let room = parse_id("roomId", &room_id)?;
        let entry = parse_id("entryId", &entry_id)?;
        let queue = playback::move_entry(ctx.app(), ctx.viewer()?, room, entry, index).await?;
        Ok(QueueEntry::list(queue, &Source::default()))
    }
}
