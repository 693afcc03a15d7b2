//! The event bus: what happened (`Event`), where it goes (`Topic`), and how it travels. Every
//! instance delivers to its own subscribers directly through the in-process `Hub`; with Redis
//! configured it also publishes to Redis, and events from other instances arrive through it.
//! Domain writes record their events in an outbox that publishes them once the write committed
//! (`domain::in_transaction`, `domain::autocommit`).
pub mod hub;
pub mod presence;
mod redis_link;
pub mod renders;
pub mod typing;

use std::{
    any::Any,
    ops::Deref,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::entity::{
    chat_member::MemberRole, message, notification, room_playback, user::PresenceVisibility,
    voice_participant,
};

pub use hub::Hub;
pub use redis_link::{LinkStats, RedisLink};

/// Where an event is delivered.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topic {
    /// Everything happening inside one chat.
    Chat(Uuid),
    /// What concerns one user across chats (added to or removed from a chat).
    User(Uuid),
    /// One user's online state.
    Presence(Uuid),
    /// WebRTC signals addressed to one user (never stored; Redis carries them to whichever
    /// instance the user is connected to).
    Voice(Uuid),
}

impl Topic {
    /// The Redis channel name (under the configured prefix).
    pub fn channel(&self, prefix: &str) -> String {
        match self {
            Self::Chat(id) => format!("{prefix}chat:{id}"),
            Self::User(id) => format!("{prefix}user:{id}"),
            Self::Presence(id) => format!("{prefix}presence:{id}"),
            Self::Voice(id) => format!("{prefix}voice:{id}"),
        }
    }
}

/// Something that happened.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    MessageCreated {
        message: message::Model,
    },
    MessageEdited {
        message: message::Model,
    },
    MessageDeleted {
        chat_id: Uuid,
        message_id: Uuid,
    },
    ReactionChanged {
        message: message::Model,
    },
    /// `by` pinned `message` in its chat.
    MessagePinned {
        message: message::Model,
        by: Uuid,
    },
    /// A message's link preview was fetched.
    LinkPreviewReady {
        chat_id: Uuid,
        message_id: Uuid,
    },
    /// A poll's votes changed, or it closed.
    PollUpdated {
        chat_id: Uuid,
        poll_id: Uuid,
    },
    /// `by` unpinned a message.
    MessageUnpinned {
        chat_id: Uuid,
        message_id: Uuid,
        by: Uuid,
    },
    ReadStatusChanged {
        chat_id: Uuid,
        user_id: Uuid,
        last_read_seq: i64,
    },
    TypingChanged {
        chat_id: Uuid,
        user_id: Uuid,
        is_typing: bool,
    },
    MemberJoined {
        chat_id: Uuid,
        user_id: Uuid,
    },
    MemberLeft {
        chat_id: Uuid,
        user_id: Uuid,
    },
    MemberRoleChanged {
        chat_id: Uuid,
        user_id: Uuid,
        role: MemberRole,
    },
    ChatUpdated {
        chat_id: Uuid,
    },
    AddedToChat {
        chat_id: Uuid,
        user_id: Uuid,
    },
    RemovedFromChat {
        chat_id: Uuid,
        user_id: Uuid,
    },
    /// Sessions of a user were revoked: `only` that one, or every one `except` the given.
    SessionsRevoked {
        user_id: Uuid,
        only: Option<Uuid>,
        except: Option<Uuid>,
    },
    PresenceChanged {
        user_id: Uuid,
        online: bool,
        last_seen: Option<DateTime<Utc>>,
        /// Set when the user changed who may see their presence (None: unchanged).
        #[serde(default)]
        visibility: Option<PresenceVisibility>,
    },
    /// `user_id` and `other` became friends (`friends`) or stopped being friends, published on
    /// `user_id`'s presence topic with their state as it is now: `other`'s watches of `user_id`
    /// change their rule at once (a presence shown to friends only appears or disappears).
    FriendshipChanged {
        user_id: Uuid,
        other: Uuid,
        friends: bool,
        online: bool,
        last_seen: Option<DateTime<Utc>>,
    },
    /// A room's player or queue changed; `playback` is the state as committed.
    PlaybackChanged {
        chat_id: Uuid,
        playback: room_playback::Model,
        reason: PlaybackReason,
        by: Option<Uuid>,
    },
    /// Someone took a seat in a room's voice.
    VoiceJoined {
        participant: voice_participant::Model,
    },
    /// Someone left a room's voice (or was removed, or stayed away past the grace period).
    VoiceLeft {
        chat_id: Uuid,
        user_id: Uuid,
    },
    /// A participant's state changed (muted, deafened, speaking, hand raised, muted by an admin).
    VoiceStateChanged {
        participant: voice_participant::Model,
    },
    /// A WebRTC signal from one participant to another, published on `Topic::Voice(to)` only.
    VoiceSignal {
        chat_id: Uuid,
        from: Uuid,
        to: Uuid,
        kind: SignalKind,
        payload: String,
    },
    /// `from` asked `to` to be friends (on `Topic::User(to)`).
    FriendRequestReceived {
        from: Uuid,
        to: Uuid,
    },
    /// `by` accepted the request `to` had sent them (on `Topic::User(to)`).
    FriendRequestAccepted {
        by: Uuid,
        to: Uuid,
    },
    /// `by` ended their friendship with `to` (on `Topic::User(to)`).
    FriendRemoved {
        by: Uuid,
        to: Uuid,
    },
    /// A notification was stored for its user (on `Topic::User(user)`).
    NotificationCreated {
        notification: notification::Model,
    },
    /// Local only, never published: the link to Redis was lost and is back, so events of this
    /// topic from other instances may have been lost meanwhile. Delivered to every topic with
    /// local subscribers once the link re-subscribed them; subscribers heal (`domain::live`).
    LinkRestored,
}

/// Why a room's playback changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, async_graphql::Enum)]
pub enum PlaybackReason {
    /// An admin played a track.
    Played,
    /// An admin paused.
    Paused,
    /// An admin resumed (or started the queue).
    Resumed,
    /// An admin moved the position.
    Seeked,
    /// An admin skipped to the queue's next track (or stopped, with an empty queue).
    Skipped,
    /// The track ended and the queue's next one started.
    Advanced,
    /// The track ended and the queue was empty: nothing plays.
    Ended,
    /// The playing track was deleted; the queue's next one replaced it.
    TrackRemoved,
    /// The queue changed (added, removed, reordered, or a queued track was deleted).
    QueueChanged,
}

/// What a WebRTC signal carries: an SDP offer or answer, an ICE candidate, or a goodbye.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalKind {
    Offer,
    Answer,
    IceCandidate,
    Bye,
}

/// An event as this instance's subscribers receive it: one `Arc<Delivered>` is handed to every
/// local subscriber, and `memo` is shared among them, so what they look up to render it (its
/// sender, its chat, …) is read from the database once per event rather than once per socket.
#[derive(Debug)]
pub struct Delivered {
    pub event: Event,
    /// Filled by the first subscriber that needs it (the GraphQL layer keeps a loader here);
    /// dropped with the event once the topic's ring buffer (`hub::CAPACITY`) has moved past it.
    pub memo: OnceLock<Arc<dyn Any + Send + Sync>>,
    /// The same for the renderings of shared subscription shapes (`renders`), which run before
    /// the event is broadcast and so hold up every delivery: their loader does not wait to batch.
    pub rendering_memo: OnceLock<Arc<dyn Any + Send + Sync>>,
    /// The event as each subscription shape renders it (`renders`), made once per shape.
    pub renders: renders::Renders,
    /// The topic the hub delivered it on (unset for what a feed made up itself, such as a
    /// message filled in from the database).
    pub topic: OnceLock<Topic>,
}

impl Delivered {
    pub fn new(event: Event) -> Arc<Self> {
        Arc::new(Self {
            event,
            memo: OnceLock::new(),
            rendering_memo: OnceLock::new(),
            renders: renders::Renders::default(),
            topic: OnceLock::new(),
        })
    }
}

impl Deref for Delivered {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

/// How live feeds healed gaps on this instance (for operators).
#[derive(Debug, Default)]
pub struct LiveStats {
    /// Messages filled in from the database.
    pub filled: AtomicU64,
    /// `ResyncRequired` notices sent.
    pub resyncs: AtomicU64,
}

impl LiveStats {
    pub fn count(&self, filled: u64, resyncs: u64) {
        self.filled.fetch_add(filled, Ordering::Relaxed);
        self.resyncs.fetch_add(resyncs, Ordering::Relaxed);
    }
}

/// The bus handle kept in the application state.
#[derive(Clone)]
pub struct Bus {
    hub: Arc<Hub>,
    redis: Option<RedisLink>,
    stats: Arc<LiveStats>,
}

impl Bus {
    /// An in-process bus (one instance).
    pub fn local() -> Self {
        Self {
            hub: Arc::new(Hub::default()),
            redis: None,
            stats: Arc::default(),
        }
    }

    /// A bus shared with other instances through Redis pub/sub.
    pub async fn with_redis(url: &str, prefix: String) -> anyhow::Result<Self> {
        let hub = Arc::new(Hub::default());
        let redis = RedisLink::start(url, prefix, hub.clone()).await?;
        hub.set_listener(redis.commands());
        Ok(Self {
            hub,
            redis: Some(redis),
            stats: Arc::default(),
        })
    }

    /// What live feeds healed on this instance.
    pub fn stats(&self) -> &LiveStats {
        &self.stats
    }

    /// The Redis link, when the bus is shared.
    pub fn redis(&self) -> Option<&RedisLink> {
        self.redis.as_ref()
    }

    /// Delivers to local subscribers at once and, with Redis, to every other instance.
    /// Failures to reach Redis are logged, never returned: the data is already committed and
    /// clients catch up by cursor.
    pub async fn publish(&self, topic: Topic, event: Event) {
        let delivered = Delivered::new(event);
        self.hub.deliver(topic, delivered.clone());
        if let Some(redis) = &self.redis {
            redis.publish(topic, &delivered.event).await;
        }
    }

    /// Publishes several events in order.
    pub async fn publish_all(&self, events: Vec<(Topic, Event)>) {
        for (topic, event) in events {
            self.publish(topic, event).await;
        }
    }

    /// Has `renderer` render the topic's events before they are broadcast (`Hub::prerender`).
    pub fn prerender(&self, topic: Topic, renderer: std::sync::Weak<dyn renders::Prerender>) {
        self.hub.prerender(topic, renderer);
    }

    /// A receiver for one topic.
    pub fn subscribe(&self, topic: Topic) -> broadcast::Receiver<Arc<Delivered>> {
        self.hub.subscribe(topic)
    }
}
