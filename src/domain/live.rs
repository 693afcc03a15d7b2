//! Who follows what while subscribed. A subscription starts by re-checking the caller's session
//! (a token valid when the socket opened may have been revoked since) and, for one chat, that the
//! caller may follow it; from then on it is a plain stream of `Feed` items (deliver this event,
//! or resync after a gap) whose end is the end of the subscription. `myEvents` follows the chats
//! the viewer is added to and drops those they leave; one chat's feed ends right after the viewer
//! leaves it or is removed. Messages reach every feed without gaps, each once and in order
//! (`gapfill`): what the bus lost is filled in from the database. Transports only map the items
//! to their own types.
mod gapfill;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::{
    StreamMap, wrappers::BroadcastStream, wrappers::errors::BroadcastStreamRecvError,
};
use uuid::Uuid;

use gapfill::{Arrival, ChatLine, Db, Store};
pub use gapfill::{FILL_MAX, Gap};

use super::{
    Viewer,
    access::chat_access,
    accounts, sessions,
    voice::signals::{self, Signal},
};
use crate::{
    entity::user::PresenceVisibility,
    error::AppResult,
    events::{Bus, Delivered, Event, Topic},
    state::AppState,
};

/// One item of a chat feed.
#[derive(Debug)]
pub enum Feed {
    /// Deliver this event.
    Event(Arc<Delivered>),
    /// Events were lost that the feed could not replay (`gap` says which kinds): the client
    /// re-fetches them. `missed` counts the events dropped from the ring (0: unknown, as after
    /// the Redis link came back). `chat_id` names the chat concerned; `None`: possibly every
    /// chat the feed follows (a lag or a restored link on a user's own topic).
    Resync {
        missed: u64,
        gap: Gap,
        chat_id: Option<Uuid>,
    },
}

impl Feed {
    fn is_resync(&self) -> bool {
        matches!(self, Self::Resync { .. })
    }
}

/// A change of one user's online state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceChange {
    pub user_id: Uuid,
    pub online: bool,
    /// When their last connection closed.
    pub last_seen: Option<DateTime<Utc>>,
    /// Their new setting, when they changed who may see their presence.
    pub visibility: Option<PresenceVisibility>,
    /// Set when they became or stopped being friends with someone (their state is as it is now).
    pub friendship: Option<Friendship>,
}

/// A friendship of a watched user that started or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Friendship {
    /// The other person of the pair.
    pub other: Uuid,
    pub friends: bool,
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
        let need = gapfill::need(&self.viewer);
        let access = Box::pin(chat_access(self.app, &self.viewer, chat_id, need)).await?;
        // Subscribed after the last seq was read: a message in between is a gap, filled in.
        let receiver = self.app.bus.subscribe(Topic::Chat(chat_id));
        let line = ChatLine::new(chat_id, Some(access.chat.last_seq), true);
        Ok(chat_feed(self.store(), receiver, line, self.viewer.user_id))
    }

    fn store(&self) -> Db {
        Db {
            app: self.app.clone(),
            viewer: self.viewer,
        }
    }

    /// Everything that concerns the viewer: what happens to them (added to or removed from a
    /// chat) and in every chat they belong to, following the chats they join from then on.
    pub async fn mine(&self) -> AppResult<impl Stream<Item = Feed> + use<>> {
        let me = self.viewer.user_id;
        let mut following = Following::new(self.app.bus.clone(), self.store(), me);
        // Their own topic first: a chat joined while the list is read still announces itself.
        following.follow(Topic::User(me), None);
        let chats = Box::pin(accounts::chat_ids(self.app, me)).await?;
        for (chat, last) in Box::pin(gapfill::last_seqs(self.app, &chats)).await? {
            following.follow(Topic::Chat(chat), Some(last));
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
    /// their current state, so no change falls in between), and every friendship of theirs that
    /// starts or ends, with the bus event it came from.
    pub fn presence(
        &self,
        user_ids: &[Uuid],
    ) -> impl Stream<Item = (Arc<Delivered>, PresenceChange)> + use<> {
        let mut topics = StreamMap::new();
        for id in user_ids {
            topics.insert(
                *id,
                BroadcastStream::new(self.app.bus.subscribe(Topic::Presence(*id))),
            );
        }
        topics.filter_map(|(_, item)| async move {
            let delivered = item.ok()?;
            let (user_id, online, last_seen, visibility, friendship) = match delivered.event {
                Event::PresenceChanged {
                    user_id,
                    online,
                    last_seen,
                    visibility,
                } => (user_id, online, last_seen, visibility, None),
                Event::FriendshipChanged {
                    user_id,
                    other,
                    friends,
                    online,
                    last_seen,
                } => (
                    user_id,
                    online,
                    last_seen,
                    None,
                    Some(Friendship { other, friends }),
                ),
                _ => return None,
            };
            let change = PresenceChange {
                user_id,
                online,
                last_seen,
                visibility,
                friendship,
            };
            Some((delivered.clone(), change))
        })
    }
}

/// One chat's events for subscriber `me`: its messages gap-free, a `Resync` where other events
/// were lost, and the end right after `me` leaves the chat (or may no longer read it).
fn chat_feed(
    store: impl Store,
    receiver: broadcast::Receiver<Arc<Delivered>>,
    line: ChatLine,
    me: Uuid,
) -> impl Stream<Item = Feed> {
    struct State<S> {
        store: S,
        receiver: broadcast::Receiver<Arc<Delivered>>,
        line: ChatLine,
        pending: VecDeque<Feed>,
        done: bool,
    }
    let state = State {
        store,
        receiver,
        line,
        pending: VecDeque::new(),
        done: false,
    };
    stream::unfold(state, move |mut s| async move {
        loop {
            if let Some(item) = s.pending.pop_front() {
                return Some((item, s));
            }
            if s.done {
                return None;
            }
            let arrival = match s.receiver.recv().await {
                Ok(event) => Arrival::Event(event),
                Err(RecvError::Lagged(missed)) => Arrival::Lagged(missed),
                Err(RecvError::Closed) => return None,
            };
            let healed = s.line.receive(&s.store, arrival).await;
            for item in healed.items {
                let leaving = matches!(&item, Feed::Event(d)
                    if matches!(d.event, Event::MemberLeft { user_id, .. } if user_id == me));
                s.pending.push_back(item);
                if leaving {
                    s.done = true;
                    break;
                }
            }
            s.done |= healed.gone;
        }
    })
}

/// The topics `myEvents` follows for `me`, growing and shrinking with their chats, with each
/// chat's messages kept gap-free.
struct Following<S> {
    bus: Bus,
    store: S,
    me: Uuid,
    topics: StreamMap<Topic, BroadcastStream<Arc<Delivered>>>,
    lines: HashMap<Uuid, ChatLine>,
    pending: VecDeque<Feed>,
}

impl<S: Store> Following<S> {
    fn new(bus: Bus, store: S, me: Uuid) -> Self {
        Self {
            bus,
            store,
            me,
            topics: StreamMap::new(),
            lines: HashMap::new(),
            pending: VecDeque::new(),
        }
    }

    /// Follows a topic; for a chat, from its message `last` (`None`: from the next one).
    fn follow(&mut self, topic: Topic, last: Option<i64>) {
        let receiver = BroadcastStream::new(self.bus.subscribe(topic));
        self.topics.insert(topic, receiver);
        if let Topic::Chat(chat_id) = topic {
            // A restored link is signalled once, on the user topic, not once per chat.
            self.lines
                .insert(chat_id, ChatLine::new(chat_id, last, false));
        }
    }

    fn unfollow(&mut self, chat_id: Uuid) {
        self.topics.remove(&Topic::Chat(chat_id));
        self.lines.remove(&chat_id);
    }

    /// Follows a chat `me` was added to and drops a chat `me` left.
    fn update(&mut self, event: &Event) {
        match *event {
            Event::AddedToChat { chat_id, user_id }
                if user_id == self.me && !self.lines.contains_key(&chat_id) =>
            {
                self.follow(Topic::Chat(chat_id), None);
            }
            Event::RemovedFromChat { chat_id, user_id } if user_id == self.me => {
                self.unfollow(chat_id);
            }
            _ => {}
        }
    }

    /// Handles one item of one topic, queueing what the subscriber gets.
    async fn receive(
        &mut self,
        topic: Topic,
        item: Result<Arc<Delivered>, BroadcastStreamRecvError>,
    ) {
        let arrival = match item {
            Ok(event) => Arrival::Event(event),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Arrival::Lagged(missed),
        };
        let chat_id = match topic {
            Topic::Chat(chat_id) => chat_id,
            _ => {
                let missed = match arrival {
                    Arrival::Event(event) if matches!(event.event, Event::LinkRestored) => 0,
                    Arrival::Event(event) => {
                        self.update(&event);
                        self.pending.push_back(Feed::Event(event));
                        return;
                    }
                    Arrival::Lagged(missed) => missed,
                };
                // Being added to or removed from a chat may be among what was lost.
                self.reconcile().await;
                self.store.count(0, 1);
                self.pending.push_back(Feed::Resync {
                    missed,
                    gap: Gap::Others,
                    chat_id: None,
                });
                return;
            }
        };
        let Some(line) = self.lines.get_mut(&chat_id) else {
            return;
        };
        let healed = line.receive(&self.store, arrival).await;
        if healed.gone {
            self.unfollow(chat_id);
        }
        for item in healed.items {
            if let Feed::Event(event) = &item {
                self.update(event);
            }
            self.pending.push_back(item);
        }
    }

    /// Brings the chats followed in line with the viewer's memberships as the database has them,
    /// announcing each difference as the `AddedToChat` / `RemovedFromChat` that was lost.
    async fn reconcile(&mut self) {
        let Some(chats) = self.store.my_chats().await else {
            return;
        };
        let me = self.me;
        let now: HashSet<Uuid> = chats.iter().map(|(chat, _)| *chat).collect();
        for (chat_id, last) in chats {
            if !self.lines.contains_key(&chat_id) {
                self.follow(Topic::Chat(chat_id), Some(last));
                let added = Event::AddedToChat {
                    chat_id,
                    user_id: me,
                };
                self.pending.push_back(Feed::Event(Delivered::new(added)));
            }
        }
        let left: Vec<Uuid> = self
            .lines
            .keys()
            .filter(|chat| !now.contains(chat))
            .copied()
            .collect();
        for chat_id in left {
            self.unfollow(chat_id);
            let removed = Event::RemovedFromChat {
                chat_id,
                user_id: me,
            };
            self.pending.push_back(Feed::Event(Delivered::new(removed)));
        }
    }

    fn into_feed(self) -> impl Stream<Item = Feed> {
        stream::unfold(self, |mut following| async move {
            loop {
                if let Some(item) = following.pending.pop_front() {
                    return Some((item, following));
                }
                let (topic, item) = following.topics.next().await?;
                following.receive(topic, item).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::events::hub::CAPACITY;

    /// A chat without messages (these tests are about other events; `gapfill` tests filling).
    struct NoMessages;

    impl Store for NoMessages {
        fn fill(
            &self,
            _chat_id: Uuid,
            after: Option<i64>,
            _upto: Option<i64>,
        ) -> futures_util::future::BoxFuture<'_, gapfill::Filled> {
            Box::pin(std::future::ready(gapfill::Filled::Messages {
                messages: Vec::new(),
                upto: after.unwrap_or(0),
            }))
        }
    }

    fn feed(bus: &Bus, chat: Uuid, me: Uuid) -> impl Stream<Item = Feed> {
        let line = ChatLine::new(chat, Some(0), true);
        chat_feed(NoMessages, bus.subscribe(Topic::Chat(chat)), line, me)
    }

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
        let events = feed(&bus, chat, me);
        let overflow = 10;
        for _ in 0..CAPACITY + overflow {
            bus.publish(Topic::Chat(chat), deleted(chat)).await;
        }
        let mut events = Box::pin(events);
        match events.next().await {
            Some(Feed::Resync {
                missed,
                gap,
                chat_id,
            }) => {
                assert_eq!(
                    (missed, gap, chat_id),
                    (overflow as u64, Gap::Others, Some(chat))
                )
            }
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
        let mut events = Box::pin(feed(&bus, chat, me));
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
        let mut following = Following::new(bus.clone(), NoMessages, me);
        following.follow(Topic::User(me), None);
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

    /// Memberships as the database has them after an outage, and no messages.
    struct Members(Vec<(Uuid, i64)>);

    impl Store for Members {
        fn fill(
            &self,
            chat_id: Uuid,
            after: Option<i64>,
            upto: Option<i64>,
        ) -> futures_util::future::BoxFuture<'_, gapfill::Filled> {
            NoMessages.fill(chat_id, after, upto)
        }

        fn my_chats(&self) -> futures_util::future::BoxFuture<'_, Option<Vec<(Uuid, i64)>>> {
            Box::pin(std::future::ready(Some(self.0.clone())))
        }
    }

    #[tokio::test]
    async fn after_a_restored_link_my_feed_catches_up_on_chats_joined_and_left() {
        let bus = Bus::local();
        let (kept, joined, left, me) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        // The database says: still in `kept`, added to `joined` while the link was down, and
        // no longer in `left`.
        let mut following = Following::new(bus.clone(), Members(vec![(kept, 3), (joined, 7)]), me);
        following.follow(Topic::User(me), None);
        following.follow(Topic::Chat(kept), Some(3));
        following.follow(Topic::Chat(left), Some(5));
        let mut events = Box::pin(following.into_feed());
        bus.publish(Topic::User(me), Event::LinkRestored).await;
        assert!(
            matches!(event(events.next().await), Event::AddedToChat { chat_id, user_id } if chat_id == joined && user_id == me)
        );
        assert!(
            matches!(event(events.next().await), Event::RemovedFromChat { chat_id, user_id } if chat_id == left && user_id == me)
        );
        assert!(matches!(
            events.next().await,
            Some(Feed::Resync { chat_id: None, .. })
        ));
        // The chat joined is followed from now on, the chat left is not.
        bus.publish(Topic::Chat(left), deleted(left)).await;
        bus.publish(Topic::Chat(joined), deleted(joined)).await;
        assert!(
            matches!(event(events.next().await), Event::MessageDeleted { chat_id, .. } if chat_id == joined)
        );
    }
}
