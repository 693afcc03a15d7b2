//! Live operations: `chatEvents`, `myEvents` and `presence` subscriptions, `setTyping`,
//! `touchLastSeen` and `onlineUsers`. Subscriptions re-check the session and membership when
//! they start; a subscriber that falls behind receives `ResyncRequired` instead of silent gaps.
use std::sync::Arc;

use async_graphql::{
    Context, ID, Object, SimpleObject, Subscription,
    futures_util::{Stream, StreamExt, stream},
};
use chrono::{DateTime, Utc};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::{
    StreamMap, wrappers::BroadcastStream, wrappers::errors::BroadcastStreamRecvError,
};
use uuid::Uuid;

use super::{
    context::ContextExt,
    loaders::UserId,
    types::{ChatEvent, User, parse_id},
};
use crate::{
    domain::{
        access::{Need, chat_access},
        accounts, presence, sessions, typing,
    },
    error::AppError,
    events::{Delivered, Event, Topic},
    state::AppState,
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
    ) -> async_graphql::Result<impl Stream<Item = ChatEvent> + use<>> {
        let viewer = *ctx.viewer()?;
        let app = ctx.app().clone();
        let chat_id = parse_id("chatId", &chat_id)?;
        let need = if viewer.is_staff {
            Need::Read
        } else {
            Need::Member
        };
        // Boxed: the checks' state would otherwise be part of the stream kept per subscriber.
        Box::pin(async {
            sessions::ensure_active(&app, &viewer).await?;
            chat_access(&app, &viewer, chat_id, need).await
        })
        .await?;
        let receiver = app.bus.subscribe(Topic::Chat(chat_id));
        Ok(chat_stream(receiver, viewer.user_id))
    }

    /// Everything relevant to me across all my chats: their events, plus being added to or
    /// removed from chats (new chats are followed from then on), so a chat list can stay live.
    async fn my_events(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = ChatEvent> + use<>> {
        let viewer = *ctx.viewer()?;
        let app = ctx.app().clone();
        sessions::ensure_active(&app, &viewer).await?;
        let me = viewer.user_id;
        let mut topics = StreamMap::new();
        topics.insert(
            Topic::User(me),
            BroadcastStream::new(app.bus.subscribe(Topic::User(me))),
        );
        for chat in accounts::chat_ids(&app, me).await? {
            topics.insert(
                Topic::Chat(chat),
                BroadcastStream::new(app.bus.subscribe(Topic::Chat(chat))),
            );
        }
        Ok(stream::unfold(
            (topics, app),
            move |(mut topics, app)| async move {
                loop {
                    let (_, item) = topics.next().await?;
                    match item {
                        Ok(event) => {
                            follow(&mut topics, &app, me, &event);
                            if let Some(out) = ChatEvent::from_delivered(&event) {
                                return Some((out, (topics, app)));
                            }
                        }
                        Err(BroadcastStreamRecvError::Lagged(missed)) => {
                            return Some((ChatEvent::resync(missed), (topics, app)));
                        }
                    }
                }
            },
        ))
    }

    /// The online state of up to 100 users: their current state first, then every change.
    async fn presence(
        &self,
        ctx: &Context<'_>,
        user_ids: Vec<ID>,
    ) -> async_graphql::Result<impl Stream<Item = PresenceUpdate> + use<>> {
        let viewer = *ctx.viewer()?;
        let app = ctx.app().clone();
        sessions::ensure_active(&app, &viewer).await?;
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
        let mut topics = StreamMap::new();
        for id in &ids {
            topics.insert(
                *id,
                BroadcastStream::new(app.bus.subscribe(Topic::Presence(*id))),
            );
        }
        let users = ctx
            .loader()
            .load_many(ids.iter().map(|id| UserId(*id)))
            .await?;
        let online = app.presence.online(&ids).await;
        let current: Vec<PresenceUpdate> = ids
            .iter()
            .filter_map(|id| users.get(&UserId(*id)))
            .map(|u| PresenceUpdate {
                user_id: ID(u.id.to_string()),
                is_online: online.contains(&u.id),
                last_seen: u.last_seen_at,
            })
            .collect();
        let changes = topics.filter_map(|(_, item)| async move {
            match item.ok().as_deref().map(|d| &d.event) {
                Some(Event::PresenceChanged {
                    user_id,
                    online,
                    last_seen,
                }) => Some(PresenceUpdate {
                    user_id: ID(user_id.to_string()),
                    is_online: *online,
                    last_seen: *last_seen,
                }),
                _ => None,
            }
        });
        Ok(stream::iter(current).chain(changes))
    }
}

/// One chat's events for subscriber `me`: a `ResyncRequired` where the subscriber fell behind,
/// and the end right after `me` leaves the chat.
fn chat_stream(
    receiver: broadcast::Receiver<Arc<Delivered>>,
    me: Uuid,
) -> impl Stream<Item = ChatEvent> {
    stream::unfold((receiver, false), move |(mut receiver, done)| async move {
        if done {
            return None;
        }
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    let leaving =
                        matches!(event.event, Event::MemberLeft { user_id, .. } if user_id == me);
                    if let Some(out) = ChatEvent::from_delivered(&event) {
                        return Some((out, (receiver, leaving)));
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    return Some((ChatEvent::resync(missed), (receiver, false)));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
}

/// Follows chats I join and drops chats I leave, inside `myEvents`.
fn follow(
    topics: &mut StreamMap<Topic, BroadcastStream<Arc<Delivered>>>,
    app: &AppState,
    me: Uuid,
    event: &Event,
) {
    match *event {
        Event::AddedToChat { chat_id, user_id } if user_id == me => {
            topics.insert(
                Topic::Chat(chat_id),
                BroadcastStream::new(app.bus.subscribe(Topic::Chat(chat_id))),
            );
        }
        Event::RemovedFromChat { chat_id, user_id } if user_id == me => {
            topics.remove(&Topic::Chat(chat_id));
        }
        _ => {}
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
        let users = ctx
            .loader()
            .load_many(ids.iter().map(|id| UserId(*id)))
            .await?;
        Ok(ids
            .iter()
            .filter_map(|id| users.get(&UserId(*id)).cloned())
            .map(User::new)
            .collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Bus, hub::CAPACITY};

    fn deleted(chat_id: Uuid) -> Event {
        Event::MessageDeleted {
            chat_id,
            message_id: Uuid::new_v4(),
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_resync() {
        let bus = Bus::local();
        let (chat, me) = (Uuid::new_v4(), Uuid::new_v4());
        let events = chat_stream(bus.subscribe(Topic::Chat(chat)), me);
        let overflow = 10;
        for _ in 0..CAPACITY + overflow {
            bus.publish(Topic::Chat(chat), deleted(chat)).await;
        }
        let mut events = Box::pin(events);
        match events.next().await {
            Some(ChatEvent::ResyncRequired(notice)) => assert_eq!(notice.missed, overflow as u64),
            _ => panic!("expected ResyncRequired first"),
        }
        // Then the events still buffered follow, none silently skipped after the notice.
        let mut rest = 0;
        while let Ok(Some(event)) =
            tokio::time::timeout(std::time::Duration::from_millis(50), events.next()).await
        {
            assert!(matches!(event, ChatEvent::MessageDeleted(_)));
            rest += 1;
        }
        assert_eq!(rest, CAPACITY);
    }

    #[tokio::test]
    async fn the_stream_ends_after_the_subscriber_leaves() {
        let bus = Bus::local();
        let (chat, me, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut events = Box::pin(chat_stream(bus.subscribe(Topic::Chat(chat)), me));
        bus.publish(
            Topic::Chat(chat),
            Event::MemberLeft {
                chat_id: chat,
                user_id: other,
            },
        )
        .await;
        bus.publish(
            Topic::Chat(chat),
            Event::MemberLeft {
                chat_id: chat,
                user_id: me,
            },
        )
        .await;
        bus.publish(Topic::Chat(chat), deleted(chat)).await;
        assert!(matches!(
            events.next().await,
            Some(ChatEvent::MemberLeft(_))
        ));
        assert!(matches!(
            events.next().await,
            Some(ChatEvent::MemberLeft(_))
        ));
        assert!(events.next().await.is_none(), "nothing after leaving");
    }
}
