//! DataLoaders: every relation a list can ask for is fetched in one batched query per kind, so a
//! page of 50 chats costs the same number of statements as a page of 5. Each HTTP request gets
//! its own caching loader (lists prefetch into it). Values carried by an event are rendered for
//! every subscriber with one caching loader per event (`Source`), filled when the event is first
//! rendered on this instance. The schema-wide fallback, used by other WebSocket operations, only
//! batches and never caches, so it cannot go stale.
//! Keys are typed so one loader serves every relation.
use std::{any::Any, collections::HashMap, sync::Arc};

use async_graphql::{
    Context,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use sea_orm::{
    ColumnTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::{
    domain::reads,
    entity::{
        chat, chat_member, chat_member::MemberRole, file, message, reaction, room_playback,
        room_queue, track, user, voice_participant,
    },
    error::AppError,
    events::Delivered,
    graphql::{context::ContextExt, fanout::Rendering},
    state::AppState,
};

/// The batched reader resolvers use.
pub type Loaders = DataLoader<Db, HashMapCache>;

/// A loader that caches for the life of one request.
pub fn per_request(app: AppState) -> Arc<Loaders> {
    Arc::new(DataLoader::with_cache(
        Db(app),
        tokio::spawn,
        HashMapCache::default(),
    ))
}

/// Where a value's relations are read from: the request's loader, or, for a value carried by an
/// event, the caching loader shared by every local subscriber of that one delivery (see
/// `events::Delivered`), so a message fanned out to 5,000 sockets loads its sender once.
#[derive(Clone, Default)]
pub struct Source(Option<Arc<Delivered>>);

impl Source {
    /// Relations of values carried by `delivered`.
    pub fn event(delivered: &Arc<Delivered>) -> Self {
        Self(Some(delivered.clone()))
    }

    /// The loader to use for a value from this source.
    ///
    /// A rendering of a shared shape (`fanout::Rendering`) reads without the batching delay: one
    /// rendering serves every subscriber of its shape and the event waits for it before it is
    /// broadcast, so the delay (at least 1 ms, on a timer thread) was paid by every delivery,
    /// while a rendering asks for a single key of each kind. Sockets executing their own
    /// selection keep the delay: thousands of them ask at once, and it makes their reads one.
    pub fn loader<'a>(&'a self, ctx: &'a Context<'_>) -> &'a Loaders {
        let Some(delivered) = &self.0 else {
            return ctx.loader();
        };
        let app = ctx.app();
        let memo = if ctx.data_opt::<Rendering>().is_some() {
            delivered
                .rendering_memo
                .get_or_init(|| -> Arc<dyn Any + Send + Sync> { per_rendering(app.clone()) })
        } else {
            delivered
                .memo
                .get_or_init(|| -> Arc<dyn Any + Send + Sync> { per_request(app.clone()) })
        };
        memo.downcast_ref::<Loaders>()
            .unwrap_or_else(|| ctx.loader())
    }
}

/// A caching loader that loads as soon as its first key is asked for, for renderings.
fn per_rendering(app: AppState) -> Arc<Loaders> {
    Arc::new(
        DataLoader::with_cache(Db(app), tokio::spawn, HashMapCache::default())
            .delay(std::time::Duration::ZERO),
    )
}

/// The schema-wide fallback: batches but never caches.
pub fn uncached(app: AppState) -> Arc<Loaders> {
    let loader = per_request(app);
    loader.enable_all_cache(false);
    loader
}

/// Batch reads against the database.
pub struct Db(AppState);

macro_rules! key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub struct $name(pub Uuid);
    };
}
key!(/// A user by id.
    UserId);
key!(/// A chat by id.
    ChatId);
key!(/// A message by id.
    MessageId);
key!(/// All members of a chat, oldest first.
    MembersOf);
key!(/// The owner membership of a chat.
    OwnerOf);
key!(/// The number of members of a chat.
    MemberCountOf);
key!(/// The reactions on a message, oldest first.
    ReactionsOn);
key!(/// Whether a user is online now.
    OnlineOf);
key!(/// The files attached to a message, in upload order.
    AttachmentsOf);
key!(/// A track with its file.
    TrackId);
key!(/// A room's stored playback state.
    PlaybackOf);
key!(/// A room's queue, next to play first.
    QueueOf);
key!(/// The seats in a room's voice, in the order they were taken.
    VoiceOf);

mod attention;
mod kept;
mod polls;
mod previews;
mod threads;
pub use attention::{FriendOf, MentionsOf, ReachesAll};
pub use kept::{PinnedNow, PinsOf, SavedBy};
pub use polls::{OptionsOf, PollOf, VotesOf};
pub use previews::PreviewOf;
pub use threads::{ThreadState, ThreadStateOf, ThreadStatsOf};

/// One user's membership in one chat.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Membership {
    pub user: Uuid,
    pub chat: Uuid,
}

/// One user's unread counts (messages, mentions) in one chat.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Unread {
    pub user: Uuid,
    pub chat: Uuid,
}

fn ids<K: Copy>(keys: &[K], f: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|k| f(*k)).collect()
}

impl Loader<UserId> for Db {
    type Value = user::Model;
    type Error = AppError;

    async fn load(&self, keys: &[UserId]) -> Result<HashMap<UserId, user::Model>, AppError> {
        let rows = user::Entity::find()
            .filter(user::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(&self.0.db)
            .await?;
        Ok(rows.into_iter().map(|u| (UserId(u.id), u)).collect())
    }
}

impl Loader<ChatId> for Db {
    type Value = chat::Model;
    type Error = AppError;

    async fn load(&self, keys: &[ChatId]) -> Result<HashMap<ChatId, chat::Model>, AppError> {
        let rows = chat::Entity::find()
            .filter(chat::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(&self.0.db)
            .await?;
        Ok(rows.into_iter().map(|c| (ChatId(c.id), c)).collect())
    }
}

impl Loader<MessageId> for Db {
    type Value = message::Model;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[MessageId],
    ) -> Result<HashMap<MessageId, message::Model>, AppError> {
        let rows = message::Entity::find()
            .filter(message::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(&self.0.db)
            .await?;
        Ok(rows.into_iter().map(|m| (MessageId(m.id), m)).collect())
    }
}

impl Loader<MembersOf> for Db {
    type Value = Vec<chat_member::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[MembersOf]) -> Result<HashMap<MembersOf, Self::Value>, AppError> {
        let rows = chat_member::Entity::find()
            .filter(chat_member::Column::ChatId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(chat_member::Column::JoinedAt)
            .order_by_asc(chat_member::Column::UserId)
            .all(&self.0.db)
            .await?;
        let mut out: HashMap<MembersOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(MembersOf(row.chat_id)).or_default().push(row);
        }
        Ok(out)
    }
}

impl Loader<OwnerOf> for Db {
    type Value = chat_member::Model;
    type Error = AppError;

    async fn load(&self, keys: &[OwnerOf]) -> Result<HashMap<OwnerOf, Self::Value>, AppError> {
        let rows = chat_member::Entity::find()
            .filter(chat_member::Column::ChatId.is_in(ids(keys, |k| k.0)))
            .filter(chat_member::Column::Role.eq(MemberRole::Owner))
            .all(&self.0.db)
            .await?;
        Ok(rows.into_iter().map(|m| (OwnerOf(m.chat_id), m)).collect())
    }
}

#[derive(FromQueryResult)]
struct ChatCount {
    chat_id: Uuid,
    n: i64,
}

impl Loader<MemberCountOf> for Db {
    type Value = u64;
    type Error = AppError;

    async fn load(&self, keys: &[MemberCountOf]) -> Result<HashMap<MemberCountOf, u64>, AppError> {
        let rows = chat_member::Entity::find()
            .select_only()
            .column(chat_member::Column::ChatId)
            .column_as(chat_member::Column::UserId.count(), "n")
            .filter(chat_member::Column::ChatId.is_in(ids(keys, |k| k.0)))
            .group_by(chat_member::Column::ChatId)
            .into_model::<ChatCount>()
            .all(&self.0.db)
            .await?;
        let mut out: HashMap<MemberCountOf, u64> = keys.iter().map(|k| (*k, 0)).collect();
        for row in rows {
            out.insert(MemberCountOf(row.chat_id), row.n.max(0) as u64);
        }
        Ok(out)
    }
}

impl Loader<ReactionsOn> for Db {
    type Value = Vec<reaction::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[ReactionsOn],
    ) -> Result<HashMap<ReactionsOn, Self::Value>, AppError> {
        let rows = reaction::Entity::find()
            .filter(reaction::Column::MessageId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(reaction::Column::CreatedAt)
            .all(&self.0.db)
            .await?;
        let mut out: HashMap<ReactionsOn, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(ReactionsOn(row.message_id))
                .or_default()
                .push(row);
        }
        Ok(out)
    }
}

async fn memberships(
    app: &AppState,
    pairs: &[(Uuid, Uuid)],
) -> Result<Vec<chat_member::Model>, AppError> {
    let users: Vec<Uuid> = pairs.iter().map(|p| p.0).collect();
    let chats: Vec<Uuid> = pairs.iter().map(|p| p.1).collect();
    Ok(chat_member::Entity::find()
        .filter(chat_member::Column::UserId.is_in(users))
        .filter(chat_member::Column::ChatId.is_in(chats))
        .all(&app.db)
        .await?
        .into_iter()
        .filter(|m| pairs.contains(&(m.user_id, m.chat_id)))
        .collect())
}

impl Loader<Membership> for Db {
    type Value = chat_member::Model;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[Membership],
    ) -> Result<HashMap<Membership, Self::Value>, AppError> {
        let pairs: Vec<(Uuid, Uuid)> = keys.iter().map(|k| (k.user, k.chat)).collect();
        let rows = memberships(&self.0, &pairs).await?;
        Ok(rows
            .into_iter()
            .map(|m| {
                (
                    Membership {
                        user: m.user_id,
                        chat: m.chat_id,
                    },
                    m,
                )
            })
            .collect())
    }
}

impl Loader<Unread> for Db {
    type Value = reads::UnreadCounts;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[Unread],
    ) -> Result<HashMap<Unread, reads::UnreadCounts>, AppError> {
        let pairs: Vec<(Uuid, Uuid)> = keys.iter().map(|k| (k.user, k.chat)).collect();
        let rows = memberships(&self.0, &pairs).await?;
        let mut out: HashMap<Unread, reads::UnreadCounts> =
            keys.iter().map(|k| (*k, Default::default())).collect();
        let mut by_user: HashMap<Uuid, Vec<(Uuid, i64)>> = HashMap::new();
        for m in rows {
            by_user
                .entry(m.user_id)
                .or_default()
                .push((m.chat_id, m.last_read_seq));
        }
        for (user, markers) in by_user {
            for (chat, n) in reads::unread_counts(&self.0, user, &markers).await? {
                out.insert(Unread { user, chat }, n);
            }
        }
        Ok(out)
    }
}

impl Loader<OnlineOf> for Db {
    type Value = bool;
    type Error = AppError;

    async fn load(&self, keys: &[OnlineOf]) -> Result<HashMap<OnlineOf, bool>, AppError> {
        let online = self.0.presence.online(&ids(keys, |k| k.0)).await;
        Ok(keys.iter().map(|k| (*k, online.contains(&k.0))).collect())
    }
}

impl Loader<AttachmentsOf> for Db {
    type Value = Vec<file::Model>;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[AttachmentsOf],
    ) -> Result<HashMap<AttachmentsOf, Self::Value>, AppError> {
        let rows = file::Entity::find()
            .filter(file::Column::MessageId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(file::Column::Id)
            .all(&self.0.db)
            .await?;
        let mut out: HashMap<AttachmentsOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            if let Some(message) = row.message_id {
                out.entry(AttachmentsOf(message)).or_default().push(row);
            }
        }
        Ok(out)
    }
}

impl Loader<VoiceOf> for Db {
    type Value = Vec<voice_participant::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[VoiceOf]) -> Result<HashMap<VoiceOf, Self::Value>, AppError> {
        let rows = voice_participant::Entity::find()
            .filter(voice_participant::Column::ChatId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(voice_participant::Column::JoinedAt)
            .order_by_asc(voice_participant::Column::UserId)
            .all(&self.0.db)
            .await?;
        let mut out: HashMap<VoiceOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(VoiceOf(row.chat_id)).or_default().push(row);
        }
        Ok(out)
    }
}

impl Loader<TrackId> for Db {
    type Value = (track::Model, file::Model);
    type Error = AppError;

    async fn load(&self, keys: &[TrackId]) -> Result<HashMap<TrackId, Self::Value>, AppError> {
        let tracks = track::Entity::find()
            .filter(track::Column::Id.is_in(ids(keys, |k| k.0)))
            .all(&self.0.db)
            .await?;
        let mut files: HashMap<Uuid, file::Model> = file::Entity::find()
            .filter(file::Column::Id.is_in(tracks.iter().map(|t| t.file_id).collect::<Vec<_>>()))
            .all(&self.0.db)
            .await?
            .into_iter()
            .map(|f| (f.id, f))
            .collect();
        Ok(tracks
            .into_iter()
            .filter_map(|t| {
                let file = files.remove(&t.file_id)?;
                Some((TrackId(t.id), (t, file)))
            })
            .collect())
    }
}

impl Loader<PlaybackOf> for Db {
    type Value = room_playback::Model;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[PlaybackOf],
    ) -> Result<HashMap<PlaybackOf, Self::Value>, AppError> {
        let rows = room_playback::Entity::find()
            .filter(room_playback::Column::ChatId.is_in(ids(keys, |k| k.0)))
            .all(&self.0.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|p| (PlaybackOf(p.chat_id), p))
            .collect())
    }
}

impl Loader<QueueOf> for Db {
    type Value = Vec<room_queue::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[QueueOf]) -> Result<HashMap<QueueOf, Self::Value>, AppError> {
        let rows = room_queue::Entity::find()
            .filter(room_queue::Column::ChatId.is_in(ids(keys, |k| k.0)))
            .order_by_asc(room_queue::Column::Position)
            .order_by_asc(room_queue::Column::Id)
            .all(&self.0.db)
            .await?;
        let mut out: HashMap<QueueOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(QueueOf(row.chat_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// The users `ids`, in that order (ids of users that are gone are passed over), in one batch.
pub async fn users_in_order(loader: &Loaders, ids: &[Uuid]) -> Result<Vec<user::Model>, AppError> {
    let users = loader.load_many(ids.iter().map(|&id| UserId(id))).await?;
    Ok(ids
        .iter()
        .filter_map(|id| users.get(&UserId(*id)).cloned())
        .collect())
}

/// All members of `chats`, oldest first, each with their user, in one statement (what
/// `MembersOf` and `UserId` would read in two).
pub async fn members_with_users(
    app: &AppState,
    chats: &[Uuid],
) -> Result<
    (
        HashMap<MembersOf, Vec<chat_member::Model>>,
        Vec<user::Model>,
    ),
    AppError,
> {
    let rows = chat_member::Entity::find()
        .filter(chat_member::Column::ChatId.is_in(chats.to_vec()))
        .select_also(user::Entity)
        .join(
            JoinType::LeftJoin,
            chat_member::Entity::belongs_to(user::Entity)
                .from(chat_member::Column::UserId)
                .to(user::Column::Id)
                .into(),
        )
        .order_by_asc(chat_member::Column::JoinedAt)
        .order_by_asc(chat_member::Column::UserId)
        .all(&app.db)
        .await?;
    let mut members: HashMap<MembersOf, Vec<chat_member::Model>> =
        chats.iter().map(|&c| (MembersOf(c), Vec::new())).collect();
    let mut users: HashMap<Uuid, user::Model> = HashMap::new();
    for (member, user) in rows {
        if let Some(user) = user {
            users.insert(user.id, user);
        }
        members
            .entry(MembersOf(member.chat_id))
            .or_default()
            .push(member);
    }
    Ok((members, users.into_values().collect()))
}

/// Messages by id, each with its sender, in one statement (what `MessageId` and `UserId` would
/// read in two).
pub async fn messages_with_senders(
    app: &AppState,
    ids: &[Uuid],
) -> Result<(HashMap<MessageId, message::Model>, Vec<user::Model>), AppError> {
    let rows = message::Entity::find()
        .filter(message::Column::Id.is_in(ids.to_vec()))
        .select_also(user::Entity)
        .join(
            JoinType::LeftJoin,
            message::Entity::belongs_to(user::Entity)
                .from(message::Column::SenderId)
                .to(user::Column::Id)
                .into(),
        )
        .all(&app.db)
        .await?;
    let mut messages = HashMap::with_capacity(rows.len());
    let mut users: HashMap<Uuid, user::Model> = HashMap::new();
    for (message, sender) in rows {
        if let Some(sender) = sender {
            users.insert(sender.id, sender);
        }
        messages.insert(MessageId(message.id), message);
    }
    Ok((messages, users.into_values().collect()))
}
