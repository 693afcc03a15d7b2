//! Live subscriptions rendered once per subscription shape, not once per socket. The socket
//! layer starts `chatEvents`, `myEvents` and `presence` as every operation starts (async-graphql
//! parses, validates, authorizes and runs the resolver, so every refusal is what it always was),
//! but hands the resolver a [`Handoff`]: the resolver leaves its feed there instead of running
//! it. From then on the socket owns the feed, and each item is rendered by replaying it through
//! the same schema and document ([`Replay`]), once per [`Shape`]; the JSON is kept on the event
//! (`events::renders`) for every other socket of that shape, so the payload is what a direct
//! execution makes. A selection that reads fields depending on who asks ([`Shape::per_viewer`])
//! is not taken over: it runs per socket inside async-graphql as before, since a replay through
//! the whole request pipeline costs more than one execution of a selection. Once a shape has
//! rendered a chat event of a topic, it renders that topic's next events before the hub
//! broadcasts them ([`Shape::render_ahead`], `events::hub`): each subscriber then wakes once per
//! event and finds its payload ready, instead of waking to wait for it and again when it is done.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use async_graphql::{
    Context, Data, Request, Variables,
    futures_util::{StreamExt, stream::BoxStream},
    parser::types::{DocumentOperations, ExecutableDocument, Selection, SelectionSet},
};
use uuid::Uuid;

use super::{AppSchema, live::PresenceUpdate};
use crate::{
    domain::live::Feed,
    events::{
        Delivered,
        renders::{self, Prerender, Rendered},
    },
};

/// One item of a live feed the socket layer renders.
pub enum LiveItem {
    /// For `chatEvents` and `myEvents`.
    Chat(Feed),
    /// For `presence`: a change (from the bus event `from`) or a current state (`from: None`).
    Presence {
        update: PresenceUpdate,
        from: Option<Arc<Delivered>>,
    },
}

impl LiveItem {
    /// The bus event this item renders, shared with every other subscriber of the topic; `None`
    /// for what only this subscriber receives (a resync notice, a current state).
    pub fn shared(&self) -> Option<&Arc<Delivered>> {
        match self {
            Self::Chat(Feed::Event(delivered)) => Some(delivered),
            Self::Chat(Feed::Resync { .. }) => None,
            Self::Presence { from, .. } => from.as_ref(),
        }
    }
}

/// A feed handed to the socket layer.
pub type LiveFeed = BoxStream<'static, LiveItem>;

/// Set in a subscribe request's data by a transport that renders live feeds itself: the resolver
/// leaves its feed here (after every check) and returns an empty stream.
#[derive(Clone, Default)]
pub struct Handoff(Arc<Mutex<Option<LiveFeed>>>);

impl Handoff {
    /// The slot, when the transport asked for the feed.
    pub fn asked<'c>(ctx: &'c Context<'_>) -> Option<&'c Handoff> {
        ctx.data_opt::<Handoff>()
    }

    /// Leaves `feed` for the transport.
    pub fn give(&self, feed: LiveFeed) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(feed);
    }

    /// The feed the resolver left, if it got that far.
    pub fn take(&self) -> Option<LiveFeed> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Set in a rendering request's data: the resolver returns this one item instead of starting a
/// feed (the subscription was authorized when it started).
pub struct Replay(Mutex<Option<LiveItem>>);

impl Replay {
    /// The item to render, when this execution is a rendering.
    pub fn take(ctx: &Context<'_>) -> Option<LiveItem> {
        ctx.data_opt::<Replay>()
            .and_then(|replay| replay.0.lock().unwrap_or_else(|e| e.into_inner()).take())
    }
}

/// In the session data of renderings: a rendering of a shared live subscription is a delivery
/// of that subscription, which the socket layer counts, not a subscription of its own.
pub struct Rendering;

impl Rendering {
    /// Whether an extension's request is a rendering (session data is what extensions see
    /// before the request is prepared).
    pub fn is(ctx: &async_graphql::extensions::ExtensionContext<'_>) -> bool {
        ctx.data_opt::<Rendering>().is_some()
    }
}

/// What makes two subscriptions render an event identically: the same document, operation
/// and variables, and the same viewer when the selection reads viewer-dependent fields.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ShapeKey {
    query: String,
    operation: Option<String>,
    /// The variables as JSON.
    variables: String,
}

/// One subscription shape, shared by the subscriptions that have it.
pub struct Shape {
    id: u64,
    key: ShapeKey,
    variables: Variables,
    per_viewer: bool,
    registry: Weak<Mutex<HashMap<ShapeKey, Weak<Shape>>>>,
    /// Itself, for the renderings it starts ahead (`Prerender`).
    me: Weak<Shape>,
    /// What it renders with ahead of its subscribers: the schema and one subscriber's rendering
    /// data (the selection is the same for every viewer, or nothing is rendered ahead).
    ahead: OnceLock<(AppSchema, Arc<Data>)>,
}

impl Drop for Shape {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            let mut shapes = registry.lock().unwrap_or_else(|e| e.into_inner());
            if shapes
                .get(&self.key)
                .is_some_and(|weak| weak.strong_count() == 0)
            {
                shapes.remove(&self.key);
            }
        }
    }
}

/// Numbers shapes; never reused, so a rendering kept on an event can never be mistaken for
/// another shape's.
static SHAPE_IDS: AtomicU64 = AtomicU64::new(1);

/// The shapes subscribed on this instance.
#[derive(Default)]
pub struct Shapes(Arc<Mutex<HashMap<ShapeKey, Weak<Shape>>>>);

impl Shapes {
    /// The shared shape of a subscription request.
    pub fn of(&self, request: &Request) -> Arc<Shape> {
        let key = ShapeKey {
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
        };
        let mut shapes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(shape) = shapes.get(&key).and_then(Weak::upgrade) {
            return shape;
        }
        let shape = Arc::new_cyclic(|me| Shape {
            id: SHAPE_IDS.fetch_add(1, Ordering::Relaxed),
            per_viewer: per_viewer(&request.query, request.operation_name.as_deref()),
            variables: request.variables.clone(),
            registry: Arc::downgrade(&self.0),
            key: key.clone(),
            me: me.clone(),
            ahead: OnceLock::new(),
        });
        shapes.insert(key, Arc::downgrade(&shape));
        shape
    }

    /// Distinct shapes subscribed now.
    #[cfg(test)]
    fn live(&self) -> usize {
        let shapes = self.0.lock().unwrap_or_else(|e| e.into_inner());
        shapes.values().filter(|s| s.strong_count() > 0).count()
    }
}

impl Shape {
    /// Has this shape render `delivered`'s topic's next events before they are broadcast, with
    /// `schema` and `data`, when the shape is the same for every viewer and the event came
    /// through the hub. Called by the subscriber that started the rendering of `delivered`.
    pub fn render_ahead(&self, schema: &AppSchema, data: &Arc<Data>, delivered: &Delivered) {
        let Some(topic) = delivered.topic.get() else {
            return;
        };
        if self.per_viewer {
            return;
        }
        let _ = self.ahead.set((schema.clone(), data.clone()));
        let Some(app) = schema.data::<crate::state::AppState>() else {
            return;
        };
        let me: Weak<dyn Prerender> = self.me.clone();
        app.bus.prerender(*topic, me);
    }

    /// Under which key `viewer`'s rendering of an event is kept.
    pub fn key_for(&self, viewer: Uuid) -> (u64, Option<Uuid>) {
        (self.id, self.per_viewer.then_some(viewer))
    }

    /// Whether each viewer gets a rendering of their own.
    pub fn per_viewer(&self) -> bool {
        self.per_viewer
    }

    /// Renders one item as a direct execution of this subscription would: `item` replayed
    /// through the schema with the subscriber's connection data. `None` when the selection
    /// yields nothing for it (an event this subscription does not show).
    pub async fn render(&self, schema: &AppSchema, data: Arc<Data>, item: LiveItem) -> Rendered {
        let mut request = Request::new(self.key.query.clone())
            .variables(self.variables.clone())
            .data(Replay(Mutex::new(Some(item))));
        if let Some(operation) = &self.key.operation {
            request = request.operation_name(operation.clone());
        }
        let mut responses = schema.execute_stream_with_session_data(request, data);
        let response = responses.next().await;
        if let Some(app) = schema.data::<crate::state::AppState>() {
            app.metrics.live_renders.inc();
        }
        let response = response?;
        serde_json::to_string(&response).ok().map(Arc::from)
    }
}

impl Prerender for Shape {
    fn start(&self, event: &Arc<Delivered>) -> Option<renders::Rendering> {
        let (schema, data) = self.ahead.get()?.clone();
        let shape = self.me.upgrade()?;
        let item = LiveItem::Chat(Feed::Event(event.clone()));
        let rendering = event
            .renders
            .get_or_start(shape.key_for(Uuid::nil()), move || {
                Box::pin(async move { shape.render(&schema, data, item).await })
            });
        Some(rendering)
    }
}

/// Fields whose value is the same whoever asks (and who asks cannot make them fail). A selection
/// made only of these renders once for every viewer; any other field (`reactedByMe`, `isRead`,
/// `myRole`, `unreadCount`, a chat's `title`, a user's `email`, …, or a field added later) makes
/// the shape render per viewer. Names are matched whatever type they are on, so a name that is
/// viewer-dependent on any type (`title`, `isMuted`) is left out everywhere: wrong sharing is
/// impossible, a missed share only costs time. A field whose value comes to depend on the viewer
/// (presence privacy or blocking could do that to `isOnline`, `lastSeen` or `sender`) must leave
/// this list in the same change: `isOnline` and `lastSeen` did (presence privacy), and are shared
/// only directly under the `presence` subscription, whose feed is filtered per watcher before it
/// is rendered ([`UNDER_PRESENCE`]).
const SAME_FOR_EVERYONE: &[&str] = &[
    "__typename",
    "id",
    "chatId",
    "messageId",
    "userId",
    "roomId",
    "content",
    "kind",
    "createdAt",
    "editedAt",
    "updatedAt",
    "isDeleted",
    "cursor",
    "message",
    "sender",
    "replyTo",
    "replyToId",
    "forwardedFrom",
    "attachments",
    "url",
    "fileName",
    "contentType",
    "size",
    "status",
    "readBy",
    "reactions",
    "emoji",
    "count",
    "users",
    "user",
    "username",
    "displayName",
    "fullName",
    "avatarUrl",
    "bio",
    "isStaff",
    "role",
    "joinedAt",
    "isTyping",
    "lastReadCursor",
    "missed",
    "gap",
    "reason",
    "changedBy",
    "nowPlaying",
    "queue",
    "track",
    "artist",
    "durationMs",
    "durationSeconds",
    "participant",
    "isDeafened",
    "isSpeaking",
    "handRaised",
    "mutedByAdmin",
    "mentions",
    "mentionsEveryone",
    "isPinned",
    "pinnedBy",
    "unpinnedBy",
    "poll",
    "multiple",
    "anonymous",
    "closesAt",
    "isClosed",
    "options",
    "position",
    "text",
    "voteCount",
    "voters",
    "totalVoters",
    "linkPreview",
    "imageUrl",
    "siteName",
    "threadRootId",
    "replyCount",
    "lastReplyAt",
    "lastRepliers",
];

/// Fields of a `presence` update that are the same for every watcher the update reaches: each
/// watcher's feed passes a change only when they may see it (`domain::privacy::Watch`).
const UNDER_PRESENCE: &[&str] = &["userId", "isOnline", "lastSeen", "__typename"];

/// Whether the operation `operation` of a subscription document (the only one when `None`)
/// selects anything outside [`SAME_FOR_EVERYONE`], its fragments included. A document that does
/// not parse, or names no such operation, counts as per viewer (it never gets this far).
fn per_viewer(query: &str, operation: Option<&str>) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return true;
    };
    let selected = match (&document.operations, operation) {
        (DocumentOperations::Single(only), _) => Some(only),
        (DocumentOperations::Multiple(named), Some(name)) => named.get(name),
        (DocumentOperations::Multiple(named), None) if named.len() == 1 => named.values().next(),
        _ => None,
    };
    let Some(selected) = selected else {
        return true;
    };
    let mut walk = Walk {
        document: &document,
        visited: Vec::new(),
    };
    !walk.shared(&selected.node.selection_set.node, Level::Root)
}

/// Where in the operation a selection set is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// The subscription's root field.
    Root,
    /// Directly under the `presence` root field.
    Presence,
    /// Anywhere else.
    Inner,
}

/// A walk through one operation's selections, into each fragment once.
struct Walk<'a> {
    document: &'a ExecutableDocument,
    visited: Vec<&'a str>,
}

impl<'a> Walk<'a> {
    fn shared(&mut self, set: &'a SelectionSet, level: Level) -> bool {
        set.items.iter().all(|selection| match &selection.node {
            Selection::Field(field) => {
                let name = field.node.name.node.as_str();
                let (allowed, below) = match level {
                    // The root field (`chatEvents`, …) is the subscription itself.
                    Level::Root if name == "presence" => (true, Level::Presence),
                    Level::Root => (true, Level::Inner),
                    Level::Presence => (UNDER_PRESENCE.contains(&name), Level::Inner),
                    Level::Inner => (SAME_FOR_EVERYONE.contains(&name), Level::Inner),
                };
                allowed && self.shared(&field.node.selection_set.node, below)
            }
            Selection::InlineFragment(fragment) => {
                self.shared(&fragment.node.selection_set.node, level)
            }
            Selection::FragmentSpread(spread) => {
                let name = spread.node.fragment_name.node.as_str();
                if self.visited.contains(&name) {
                    return true;
                }
                self.visited.push(name);
                match self.document.fragments.get(&spread.node.fragment_name.node) {
                    Some(fragment) => self.shared(&fragment.node.selection_set.node, level),
                    None => false,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_dependent_fields_anywhere_make_a_shape_per_viewer() {
        let shared = "subscription($c: ID!) { chatEvents(chatId: $c) { __typename ... on MessageCreated { message { id content sender { id username } reactions { emoji count } } } } }";
        assert!(!per_viewer(shared, None));
        let mine = "subscription { myEvents { ... on ReactionChanged { message { reactions { emoji reactedByMe } } } } }";
        assert!(per_viewer(mine, None));
        let in_fragment =
            "subscription { myEvents { ...F } } fragment F on ChatUpdated { chat { unreadCount } }";
        assert!(per_viewer(in_fragment, None));
        let title = "subscription { myEvents { ... on ChatUpdated { chat { title } } } }";
        assert!(
            per_viewer(title, None),
            "a chat's title names the other person in a direct chat"
        );
        assert!(per_viewer("subscription {", None), "unparsed: never shared");
        // Presence privacy: a user's online state depends on who asks, except in the presence
        // feed itself, which is filtered per watcher before it is rendered.
        let presence =
            "subscription($u: [ID!]!) { presence(userIds: $u) { userId isOnline lastSeen } }";
        assert!(!per_viewer(presence, None));
        let sender_online = "subscription($c: ID!) { chatEvents(chatId: $c) { ... on MessageCreated { message { sender { isOnline } } } } }";
        assert!(per_viewer(sender_online, None));
        let last_seen = "subscription { myEvents { ... on MemberJoined { user { lastSeen } } } }";
        assert!(per_viewer(last_seen, None));
        // Only the operation run counts, with the fragments it spreads.
        let two = "subscription A { myEvents { ...F } } subscription B { myEvents { ... on ChatUpdated { chat { myRole } } } } fragment F on MessageCreated { message { id } }";
        assert!(!per_viewer(two, Some("A")));
        assert!(per_viewer(two, Some("B")));
        assert!(per_viewer(two, None), "two operations and none named");
    }

    #[test]
    fn one_shape_per_document_operation_and_variables() {
        let shapes = Shapes::default();
        let request = |chat: &str| {
            Request::new("subscription($c: ID!) { chatEvents(chatId: $c) { __typename } }")
                .variables(Variables::from_json(serde_json::json!({ "c": chat })))
        };
        let a = shapes.of(&request("1"));
        let b = shapes.of(&request("1"));
        let c = shapes.of(&request("2"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(a.id, c.id);
        assert_eq!(shapes.live(), 2);
        drop((a, b, c));
        assert_eq!(shapes.live(), 0);
        assert!(
            shapes.0.lock().unwrap().is_empty(),
            "dropped shapes leave the registry"
        );
    }
}
