//! Who follows what while subscribed. A subscription starts by re-checking the caller's session
//! (a token valid when the socket opened may have been revoked since) and, for one chat, that the
//! caller may follow it; from then on it is a plain stream of `Feed` items (deliver this event,
//! or resync after a gap) whose end is the end of the subscription. `myEvents` follows the chats
//! the viewer is added to and drops those they leave; one chat's feed ends right after the viewer
//! leaves it or is removed. Transports only map the items to their own types.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::{
    StreamMap, wrappers::BroadcastStream, wrappers::errors::BroadcastStreamRecvError,
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
    accounts, sessions,
    voice::signals::{self, Signal},
};
use crate::{
    error::AppResult,
    events::{Bus, Delivered, Event, Topic},
    state::AppState,
};

/// One item of a chat feed.
#[derive(Debug)]
pub enum Feed {
    /// Deliver this event.
    Event(Arc<Delivered>),
    /// The subscriber fell behind and `missed` events were dropped: it must re-fetch by cursor.
    Resync { missed: u64 },
}

/// A change of one user's online state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceChange {
    pub user_id: Uuid,
    pub online: bool,
    /// When their last connection closed.
    pub last_seen: Option<DateTime<Utc>>,
}

// A subscription keeps the future that set it up as part of its stream (async-graphql flattens
// the two), and an async fn is as large as its largest await: the database calls below are boxed
// so their state is freed when they finish instead of sizing every idle subscriber.

/// A viewer whose session was found valid as the subscription started. Borrowed, not owned:
/// whatever an async fn owns it holds twice while it waits.
pub struct Subscriber<'a> {
    app: &'a AppState,
    viewer: Viewer,
}

impl<'a> Subscriber<'a> {
    /// Re-checks the viewer's session (not logged out, not expired).
    pub async fn start(app: &'a AppState, viewer: Viewer) -> AppResult<Self> {
        Box::pin(sessions::ensure_active(app, &viewer)).await?;
        Ok(Self { app, viewer })
    }

    /// Everything that happens in one chat, for its members (staff may follow any chat); ends
    /// right after the viewer leaves it or is removed.
    pub async fn chat(&self, chat_id: Uuid) -> AppResult<impl Stream<Item = Feed> + use<>> {
        let need = if self.viewer.is_staff {
            Need::Read
        } else {
            Need::Member
        };
        Box::pin(chat_access(self.app, &self.viewer, chat_id, need)).await?;
        let receiver = self.app.bus.subscribe(Topic::Chat(chat_id));
        Ok(chat_feed(receiver, self.viewer.user_id))
    }

    /// Everything that concerns the viewer: what happens to them (added to or removed from a
    /// chat) and in every chat they belong to, following the chats they join from then on.
    pub async fn mine(&self) -> AppResult<impl Stream<Item = Feed> + use<>> {
        let me = self.viewer.user_id;
        let mut following = Following::new(self.app.bus.clone(), me);
        // Their own topic first: a chat joined while the list is read still announces itself.
        following.follow(Topic::User(me));
        for chat in Box::pin(accounts::chat_ids(self.app, me)).await? {
            following.follow(Topic::Chat(chat));
        }
        Ok(following.into_feed())
    }

    /// The WebRTC signals addressed to the viewer in one room's voice (room members only).
    pub async fn voice_signals(
        &self,
        room_id: Uuid,
    ) -> AppResult<impl Stream<Item = Signal> + use<>> {
        Box::pin(signals::check_listener(self.app, &self.viewer, room_id)).await?;
        let receiver = self.app.bus.subscribe(Topic::Voice(self.viewer.user_id));
        Ok(signals::feed(receiver, room_id))
    }

    /// Every change of these users' online state from now on (subscribed before the caller reads
    /// their current state, so no change falls in between).
    pub fn presence(&self, user_ids: &[Uuid]) -> impl Stream<Item = PresenceChange> + use<> {
        let mut topics = StreamMap::new();
        for id in user_ids {
            topics.insert(
                *id,
                BroadcastStream::new(self.app.bus.subscribe(Topic::Presence(*id))),
            );
        }
        topics.filter_map(|(_, item)| async move {
            match item.ok().as_deref().map(|d| &d.event) {
                Some(Event::PresenceChanged {
                    user_id,
                    online,
                    last_seen,
                }) => Some(PresenceChange {
                    user_id: *user_id,
                    online: *online,
                    last_seen: *last_seen,
                }),
                _ => None,
            }
        })
    }
}

/// One chat's events for subscriber `me`: a `Resync` where the subscriber fell behind, and the
/// end right after `me` leaves the chat.
fn chat_feed(receiver: broadcast::Receiver<Arc<Delivered>>, me: Uuid) -> impl Stream<Item = Feed> {
    stream::unfold((receiver, false), move |(mut receiver, done)| async move {
        if done {
            return None;
        }
        match receiver.recv().await {
            Ok(event) => {
                let leaving =
                    matches!(event.event, Event::MemberLeft { user_id, .. } if user_id == me);
                Some((Feed::Event(event), (receiver, leaving)))
            }
            Err(RecvError::Lagged(missed)) => Some((Feed::Resync { missed }, (receiver, false))),
            Err(RecvError::Closed) => None,
        }
    })
}

/// The topics `myEvents` follows for `me`, growing and shrinking with their chats.
struct Following {
    bus: Bus,
    me: Uuid,
    topics: StreamMap<Topic, BroadcastStream<Arc<Delivered>>>,
}

impl Following {
    fn new(bus: Bus, me: Uuid) -> Self {
        Self {
            bus,
            me,
            topics: StreamMap::new(),
        }
    }

    fn follow(&mut self, topic: Topic) {
        let receiver = BroadcastStream::new(self.bus.subscribe(topic));
        self.topics.insert(topic, receiver);
    }

    /// Follows a chat `me` was added to and drops a chat `me` left.
    fn update(&mut self, event: &Event) {
        match *event {
            Event::AddedToChat { chat_id, user_id } if user_id == self.me => {
                self.follow(Topic::Chat(chat_id));
            }
            Event::RemovedFromChat { chat_id, user_id } if user_id == self.me => {
                self.topics.remove(&Topic::Chat(chat_id));
            }
            _ => {}
        }
    }

    fn into_feed(self) -> impl Stream<Item = Feed> {
        stream::unfold(self, |mut following| async move {
            let (_, item) = following.topics.next().await?;
            let feed = match item {
                Ok(event) => {
                    following.update(&event);
                    Feed::Event(event)
                }
                Err(BroadcastStreamRecvError::Lagged(missed)) => Feed::Resync { missed },
            };
            Some((feed, following))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::events::hub::CAPACITY;

    fn deleted(chat_id: Uuid) -> Event {
        Event::MessageDeleted {
            chat_id,
            message_id: Uuid::new_v4(),
        }
    }

    fn event(item: Option<Feed>) -> Event {
        match item {
            Some(Feed::Event(delivered)) => delivered.event.clone(),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_resync() {
        let bus = Bus::local();
        let (chat, me) = (Uuid::new_v4(), Uuid::new_v4());
        let events = chat_feed(bus.subscribe(Topic::Chat(chat)), me);
        let overflow = 10;
        for _ in 0..CAPACITY + overflow {
            bus.publish(Topic::Chat(chat), deleted(chat)).await;
        }
        let mut events = Box::pin(events);
        match events.next().await {
            Some(Feed::Resync { missed }) => assert_eq!(missed, overflow as u64),
            other => panic!("expected Resync first, got {other:?}"),
        }
        // Then the events still buffered follow, none silently skipped after the notice.
        let mut rest = 0;
        while let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(50), events.next()).await
        {
            assert!(matches!(event(Some(item)), Event::MessageDeleted { .. }));
            rest += 1;
        }
        assert_eq!(rest, CAPACITY);
    }

    #[tokio::test]
    async fn the_stream_ends_after_the_subscriber_leaves() {
        let bus = Bus::local();
        let (chat, me, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut events = Box::pin(chat_feed(bus.subscribe(Topic::Chat(chat)), me));
        for user_id in [other, me] {
            let left = Event::MemberLeft {
                chat_id: chat,
                user_id,
            };
            bus.publish(Topic::Chat(chat), left).await;
        }
        bus.publish(Topic::Chat(chat), deleted(chat)).await;
        assert!(
            matches!(event(events.next().await), Event::MemberLeft { user_id, .. } if user_id == other)
        );
        assert!(
            matches!(event(events.next().await), Event::MemberLeft { user_id, .. } if user_id == me)
        );
        assert!(events.next().await.is_none(), "nothing after leaving");
    }

    #[tokio::test]
    async fn my_feed_follows_chats_i_join_and_drops_chats_i_leave() {
        let bus = Bus::local();
        let (chat, me, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let mut following = Following::new(bus.clone(), me);
        following.follow(Topic::User(me));
        let mut events = Box::pin(following.into_feed());
        let (mine, in_chat) = (Topic::User(me), Topic::Chat(chat));
        let added = |user_id| Event::AddedToChat {
            chat_id: chat,
            user_id,
        };
        let removed = Event::RemovedFromChat {
            chat_id: chat,
            user_id: me,
        };
        let updated = Event::ChatUpdated { chat_id: chat };
        // What is published where, and whether it reaches me (each step waits for what does, so
        // a chat joined is followed before its next event is published).
        let steps = [
            (mine, added(other), true),
            (in_chat, deleted(chat), false),
            (mine, updated.clone(), true),
            (mine, added(me), true),
            (in_chat, deleted(chat), true),
            (mine, removed, true),
            (in_chat, deleted(chat), false),
            (mine, updated, true),
        ];
        for (step, (topic, published, delivered)) in steps.into_iter().enumerate() {
            let kind = std::mem::discriminant(&published);
            bus.publish(topic, published).await;
            if delivered {
                let received = event(events.next().await);
                assert_eq!(std::mem::discriminant(&received), kind, "step {step}");
            }
        }
        use futures_util::FutureExt;
        assert!(
            events.next().now_or_never().is_none(),
            "nothing else arrived"
        );
    }
}
