//! `Playback` and `QueueEntry`: what a room plays now and next, as clients see it. A playback
//! carries the stored position and the server instant it holds at, plus `serverTime` and the
//! position at that time, so every client (however late it joined) plays the same spot.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Track, User};
use crate::{
    domain::playback::{self, State, clock},
    entity::room_queue,
    graphql::loaders::{Source, TrackId, UserId},
};

/// A room's playback state, rendered at `at` (server time).
pub struct Playback {
    pub state: State,
    pub at: DateTime<Utc>,
    pub source: Source,
}

impl Playback {
    /// The state as clients see it now; None when nothing is loaded.
    pub fn new(state: State, source: Source) -> Option<Self> {
        state.track_id.is_some().then(|| Self {
            state,
            at: clock::now(),
            source,
        })
    }

    async fn loaded_track(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Track>> {
        load_track(ctx, &self.source, self.state.track_id).await
    }
}

/// A track with its file, if `id` is given and the track still exists.
async fn load_track(
    ctx: &Context<'_>,
    source: &Source,
    id: Option<Uuid>,
) -> async_graphql::Result<Option<Track>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(source
        .loader(ctx)
        .load_one(TrackId(id))
        .await?
        .map(|(t, f)| Track(t, f)))
}

/// A user, if `id` is given and the account still exists.
async fn load_user(
    ctx: &Context<'_>,
    source: &Source,
    id: Option<Uuid>,
) -> async_graphql::Result<Option<User>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(source
        .loader(ctx)
        .load_one(UserId(id))
        .await?
        .map(User::new))
}

/// What a room is playing: a track, playing or paused, at a position. While playing, the
/// position at server time `t` is `positionMs + (t - updatedAt)`; equivalently
/// `t - startedAt`. Correct your clock with `serverTime` (see `Query.serverTime`).
#[Object]
impl Playback {
    /// The track loaded (null if it was deleted since this was rendered).
    async fn track(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Track>> {
        self.loaded_track(ctx).await
    }

    /// Whether it is playing (false: paused at `positionMs`).
    async fn is_playing(&self) -> bool {
        self.state.is_playing
    }

    /// The position in ms at `updatedAt`.
    async fn position_ms(&self) -> i64 {
        self.state.position_ms
    }

    /// The server instant `positionMs` holds at (millisecond precision).
    async fn updated_at(&self) -> DateTime<Utc> {
        self.state.updated_at
    }

    /// While playing: the server instant the track was (or would have been) at 0 ms.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        clock::started_at(&self.state)
    }

    /// While playing a track of known length: the server instant it ends (the queue's next
    /// track starts then).
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.state.ends_at
    }

    /// The server's clock when this was produced.
    async fn server_time(&self) -> DateTime<Utc> {
        self.at
    }

    /// The position in ms at `serverTime`.
    async fn current_position_ms(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        let length = self
            .loaded_track(ctx)
            .await?
            .and_then(|t| playback::length_ms(&t.0));
        Ok(clock::position_at(&self.state, length, self.at))
    }

    /// Who changed it last (null when it advanced by itself).
    async fn changed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, &self.source, self.state.changed_by).await
    }

    /// Increases with every change; a client can ignore states older than one it has.
    async fn version(&self) -> i64 {
        self.state.version
    }
}

/// A track waiting in a room's queue.
pub struct QueueEntry {
    pub entry: room_queue::Model,
    pub index: usize,
    pub source: Source,
}

impl QueueEntry {
    /// A queue as clients see it, in order.
    pub fn list(entries: Vec<room_queue::Model>, source: &Source) -> Vec<Self> {
        entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| Self {
                entry,
                index,
                source: source.clone(),
            })
            .collect()
    }
}

/// A track in a room's queue.
#[Object]
impl QueueEntry {
    /// Stable id of this entry (pass it to `removeFromQueue` and `moveInQueue`).
    async fn id(&self) -> ID {
        ID(self.entry.id.to_string())
    }

    /// Place in the queue: 0 plays next.
    async fn index(&self) -> usize {
        self.index
    }

    /// The track (null if it was deleted since this was rendered).
    async fn track(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Track>> {
        load_track(ctx, &self.source, Some(self.entry.track_id)).await
    }

    /// Who added it.
    async fn added_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        load_user(ctx, &self.source, self.entry.added_by).await
    }

    /// When it was added.
    async fn added_at(&self) -> DateTime<Utc> {
        self.entry.added_at
    }
}
