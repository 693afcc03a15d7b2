//! Live operations: `chatEvents`, `myEvents` and `presence` subscriptions, `setTyping`,
//! `touchLastSeen` and `onlineUsers`. Who follows what (session and membership checks, chats
//! joined and left, resync after a gap) is `domain::live`; this layer maps its items to types.
use async_graphql::{
    Context, ID, Object, SimpleObject, Subscription,
    futures_util::{Stream, StreamExt, future, stream, stream::BoxStream},
};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    fanout::{Handoff, LiveItem, Replay},
    loaders::users_in_order,
    types::{ChatEvent, User, parse_id},
};
use crate::{
    domain::{
        live::{Feed, PresenceChange, Subscriber},
        presence, privacy, typing,
    },
    error::AppError,
    metrics::Metrics,
};

/// Most users one `presence` subscription may watch.
const PRESENCE_MAX: usize = 100;

/// Live subscriptions.
#[derive(Default)]
pub struct LiveSubscription;

#[Subscription]
impl LiveSubscription {
    /// Everything that happens in one chat: messages created, edited and deleted, reactions,
    /// read markers, typing, members joining, leaving or changing role. Members (and staff)
    /// only; ends right after the caller leaves or is removed.
    async fn chat_events(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
    ) -> async_graphql::Result<BoxStream<'static, ChatEvent>> {
        if let Some(item) = Replay::take(ctx) {
            return Ok(replayed_chat_event(item, ctx));
        }
        let viewer = *ctx.viewer()?;
        let chat_id = parse_id("chatId", &chat_id)?;
        let feed = Subscriber::start(ctx.app(), viewer)
            .await?
            .chat(chat_id)
            .await?;
        Ok(chat_events_of(ctx, feed))
    }

    /// Everything relevant to me across all my chats: their events, plus being added to or
    /// removed from chats (new chats are followed from then on), so a chat list can stay live.
    async fn my_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<BoxStream<'static, ChatEvent>> {
        if let Some(item) = Replay::take(ctx) {
            return Ok(replayed_chat_event(item, ctx));
        }
        let viewer = *ctx.viewer()?;
        let feed = Subscriber::start(ctx.app(), viewer).await?.mine().await?;
        Ok(chat_events_of(ctx, feed))
    }

    /// The online state of up to 100 users: their current state first, then every change.
    async fn presence(
        &self,
        ctx: &Context<'_>,
        user_ids: Vec<ID>,
    ) -> async_graphql::Result<BoxStream<'static, PresenceUpdate>> {
        if let Some(item) = Replay::take(ctx) {
            return Ok(match item {
                LiveItem::Presence { update, .. } => stream::once(future::ready(update)).boxed(),
                LiveItem::Chat(_) => stream::empty().boxed(),
            });
        }
        let viewer = *ctx.viewer()?;
        let subscriber = Subscriber::start(ctx.app(), viewer).await?;
        if user_ids.is_empty() || user_ids.len() > PRESENCE_MAX {
            return Err(AppError::bad_input(
                "userIds",
                format!("give 1 to {PRESENCE_MAX} user ids"),
            )
            .into());
        }
        let ids = user_ids
            .iter()
            .map(|id| parse_id("userIds", id))
            .collect::<Result<Vec<_>, _>>()?;
        let changes = subscriber.presence(&ids);
        let users = users_in_order(ctx.loader(), &ids).await?;
        let watch = privacy::Watch::of(&ctx.app().db, viewer.user_id, &users).await?;
        let online = ctx.app().presence.online(&ids).await;
        let current: Vec<PresenceUpdate> = users
            .iter()
            .map(|u| {
                if !watch.sees(u.id) {
                    return PresenceUpdate::from(privacy::hidden(u.id));
                }
                PresenceUpdate {
                    user_id: ID(u.id.to_string()),
                    is_online: online.contains(&u.id),
                    last_seen: u.last_seen_at,
                }
            })
            .collect();
        let changes = watch.filter(changes);
        if let Some(handoff) = Handoff::asked(ctx) {
            let current = current
                .into_iter()
                .map(|update| LiveItem::Presence { update, from: None });
            let changes = changes.map(|(from, change)| LiveItem::Presence {
                update: PresenceUpdate::from(change),
                from,
            });
            handoff.give(stream::iter(current).chain(changes).boxed());
            return Ok(stream::empty().boxed());
        }
        let changes = changes.map(|(_, change)| PresenceUpdate::from(change));
        Ok(stream::iter(current).chain(changes).boxed())
    }
}

/// A chat feed as `ChatEvent`s, or handed to the transport that asked for it (then the
/// subscription's own stream is empty).
fn chat_events_of(
    ctx: &Context<'_>,
    feed: impl Stream<Item = Feed> + Send + 'static,
) -> BoxStream<'static, ChatEvent> {
    if let Some(handoff) = Handoff::asked(ctx) {
        handoff.give(feed.map(LiveItem::Chat).boxed());
        return stream::empty().boxed();
    }
    let metrics = ctx.app().metrics.clone();
    feed.filter_map(move |item| future::ready(chat_event(item, &metrics)))
        .boxed()
}

/// The one event a rendering replays.
fn replayed_chat_event(item: LiveItem, ctx: &Context<'_>) -> BoxStream<'static, ChatEvent> {
    let event = match item {
        LiveItem::Chat(item) => chat_event(item, &ctx.app().metrics),
        LiveItem::Presence { .. } => None,
    };
    stream::iter(event).boxed()
}

/// The GraphQL form of a feed item; events that are not chat events (presence, sessions) have
/// none and are skipped. Resync notices and what they report missed are counted.
fn chat_event(item: Feed, metrics: &Metrics) -> Option<ChatEvent> {
    match item {
        Feed::Event(delivered) => ChatEvent::from_delivered(&delivered),
        Feed::Resync {
            missed,
            gap,
            chat_id,
        } => {
            metrics.resyncs.inc();
            metrics.dropped.inc_by(missed);
            Some(ChatEvent::resync(missed, gap, chat_id))
        }
    }
}

/// A user's online state.
#[derive(SimpleObject)]
pub struct PresenceUpdate {
    /// The user.
    pub user_id: ID,
    /// Whether they have a live connection anywhere.
    pub is_online: bool,
    /// When their last connection closed.
    pub last_seen: Option<DateTime<Utc>>,
}

impl From<PresenceChange> for PresenceUpdate {
    fn from(change: PresenceChange) -> Self {
        Self {
            user_id: ID(change.user_id.to_string()),
            is_online: change.online,
            last_seen: change.last_seen,
        }
    }
}

/// Live queries.
#[derive(Default)]
pub struct LiveQuery;

#[Object]
impl LiveQuery {
    /// The members of a chat who are online now.
    async fn online_users(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
    ) -> async_graphql::Result<Vec<User>> {
        let viewer = ctx.viewer()?;
        let ids =
            presence::online_members(ctx.app(), viewer, parse_id("chatId", &chat_id)?).await?;
        let users = users_in_order(ctx.loader(), &ids).await?;
        Ok(users.into_iter().map(User::new).collect())
    }
}

/// Live mutations.
#[derive(Default)]
pub struct LiveMutation;

#[Object]
impl LiveMutation {
    /// Tells the chat I am typing (refresh every few seconds; it stops by itself about 6 s
    /// after the last refresh) or that I stopped.
    async fn set_typing(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        is_typing: bool,
    ) -> async_graphql::Result<bool> {
        typing::set_typing(
            ctx.app(),
            ctx.viewer()?,
            parse_id("chatId", &chat_id)?,
            is_typing,
        )
        .await?;
        Ok(true)
    }

    /// Records that I was active just now; returns the stored `lastSeen`.
    async fn touch_last_seen(&self, ctx: &Context<'_>) -> async_graphql::Result<DateTime<Utc>> {
        Ok(presence::touch_last_seen(ctx.app(), ctx.viewer()?).await?)
    }
}
