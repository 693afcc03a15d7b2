//! Realtime chat events over the subscription socket, each area with one subscriber per protocol:
//! every member gets every event once and in order, strangers are refused, a removed member's
//! subscription ends, `myEvents` follows new chats, and history resumes by cursor after a
//! reconnect. `Socket` is the test client the presence tests share.
use std::{collections::VecDeque, time::Duration};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::fixtures::{create_group, create_room, open_direct, register_staff, send, send_many};
use crate::helpers::{TestApp, WsClient, WsEvent, spawn_app};

pub const MODERN: &str = "graphql-transport-ws";
pub const LEGACY: &str = "graphql-ws";
pub const PROTOCOLS: [&str; 2] = [MODERN, LEGACY];

/// How long an event may take to arrive.
const WAIT: Duration = Duration::from_secs(5);

macro_rules! event_selection {
    () => {
        "{ __typename
            ... on MessageCreated { message { id chatId content sender { id } } }
            ... on MessageEdited { message { id content editedAt } }
            ... on MessageDeleted { chatId messageId }
            ... on ReactionChanged { message { id reactions { emoji count reactedByMe users { id } } } }
            ... on ReadStatusChanged { chatId user { id } lastReadCursor }
            ... on TypingChanged { chatId user { id } isTyping }
            ... on MemberJoined { chatId user { id } }
            ... on MemberLeft { chatId user { id } }
            ... on MemberRoleChanged { chatId user { id } role }
            ... on ChatUpdated { chat { id } }
            ... on AddedToChat { chat { id name } }
            ... on RemovedFromChat { chatId }
            ... on ResyncRequired { missed reason } }"
    };
}

pub const CHAT_EVENTS: &str = concat!(
    "subscription($chatId: ID!) { chatEvents(chatId: $chatId) ",
    event_selection!(),
    " }"
);
pub const MY_EVENTS: &str = concat!("subscription { myEvents ", event_selection!(), " }");
/// `myEvents` with what concerns people (friend requests and friendships).
pub const MY_EVENTS_PEOPLE: &str = "subscription { myEvents { __typename
    ... on FriendRequestReceived { user { id username } }
    ... on FriendRequestAccepted { user { id username } }
    ... on FriendRemoved { userId } } }";
pub const PRESENCE: &str =
    "subscription($ids: [ID!]!) { presence(userIds: $ids) { userId isOnline lastSeen } }";

/// A signed-in subscription socket. Messages read while waiting for a `pong` are kept for later.
pub struct Socket {
    pub ws: WsClient,
    pub protocol: &'static str,
    queued: VecDeque<Value>,
}

impl Socket {
    /// Connects with `protocol`, authenticates with `token` and checks the `connection_ack`.
    pub async fn open(app: &TestApp, token: &str, protocol: &'static str) -> Self {
        let mut ws = app.ws("/graphql/ws", protocol).await;
        let payload = if protocol == MODERN {
            json!({ "Authorization": format!("Bearer {token}") })
        } else {
            json!({ "token": token })
        };
        match ws.init(payload).await {
            WsEvent::Json(ack) if ack["type"] == "connection_ack" => {}
            other => panic!("{protocol}: expected connection_ack, got {other:?}"),
        }
        Self {
            ws,
            protocol,
            queued: VecDeque::new(),
        }
    }

    /// Starts subscription `id` and waits until the server has registered it.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == MODERN {
            "subscribe"
        } else {
            "start"
        };
        self.ws
            .send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }))
            .await;
        // graphql-transport-ws: the pong proves the server read the subscribe; either protocol:
        // the resolver then checks access in the database before it listens to the bus.
        if self.protocol == MODERN {
            self.ws.send(json!({ "type": "ping" })).await;
            loop {
                let message = self.read(WAIT).await.expect("pong within 5 s");
                if message["type"] == "pong" {
                    break;
                }
                self.queued.push_back(message);
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// The next text message straight from the socket (`ka` skipped), or None after `within`.
    async fn read(&mut self, within: Duration) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.stream.next())
                .await
                .ok()?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).expect("JSON message");
                    if value["type"] != "ka" {
                        return Some(value);
                    }
                }
                Some(Ok(Message::Close(frame))) => panic!("{}: closed: {frame:?}", self.protocol),
                Some(Ok(_)) => {}
                Some(Err(err)) => panic!("{}: socket failed: {err}", self.protocol),
                None => panic!("{}: socket ended", self.protocol),
            }
        }
    }

    /// The next message within `within`; panics when none comes.
    pub async fn message_within(&mut self, within: Duration) -> Value {
        if let Some(message) = self.queued.pop_front() {
            return message;
        }
        let protocol = self.protocol;
        self.read(within)
            .await
            .unwrap_or_else(|| panic!("{protocol}: no message within {within:?}"))
    }

    /// The next event of subscription `id` within `within`: the value of its one data field.
    /// Panics on anything else (an error, a `complete`, another subscription's event).
    pub async fn event_within(&mut self, id: &str, within: Duration) -> Value {
        let message = self.message_within(within).await;
        let kind = if self.protocol == MODERN {
            "next"
        } else {
            "data"
        };
        assert!(
            message["type"] == kind
                && message["id"] == id
                && message["payload"].get("errors").is_none(),
            "{}: expected an event of {id}, got {message}",
            self.protocol
        );
        let data = message["payload"]["data"]
            .as_object()
            .unwrap_or_else(|| panic!("no data in {message}"));
        assert_eq!(data.len(), 1, "{message}");
        data.values().next().unwrap().clone()
    }

    /// The next event of subscription `id`, within five seconds.
    pub async fn event(&mut self, id: &str) -> Value {
        self.event_within(id, WAIT).await
    }

    /// The next event of `id` with `__typename` `typename`, passing over only events whose type
    /// is in `skippable`.
    pub async fn event_of_type(&mut self, id: &str, typename: &str, skippable: &[&str]) -> Value {
        loop {
            let event = self.event(id).await;
            let kind = event["__typename"].as_str().unwrap_or_default();
            if kind == typename {
                return event;
            }
            assert!(
                skippable.contains(&kind),
                "{}: expected {typename}, got {event}",
                self.protocol
            );
        }
    }

    /// Expects the server to end subscription `id` now.
    pub async fn complete(&mut self, id: &str) {
        let message = self.message_within(WAIT).await;
        assert_eq!(
            message,
            json!({ "id": id, "type": "complete" }),
            "{}",
            self.protocol
        );
    }

    /// The refusal of subscription `id`, as its first error: a protocol `error` message, or a
    /// result with errors and no data followed by `complete`.
    pub async fn refusal(&mut self, id: &str) -> Value {
        let message = self.message_within(WAIT).await;
        assert_eq!(message["id"], id, "{}: {message}", self.protocol);
        match message["type"].as_str() {
            Some("error") => match &message["payload"] {
                Value::Array(errors) => errors[0].clone(),
                error => error.clone(),
            },
            Some("next" | "data") => {
                assert!(
                    message["payload"]["data"].is_null(),
                    "refused, so no data: {message}"
                );
                let error = message["payload"]["errors"][0].clone();
                assert!(error.is_object(), "{}: {message}", self.protocol);
                self.complete(id).await;
                error
            }
            _ => panic!(
                "{}: expected a refusal of {id}, got {message}",
                self.protocol
            ),
        }
    }

    /// Proves nothing is waiting on the socket: a one-tick heartbeat started now must be the
    /// next thing the server sends.
    pub async fn expect_quiet(&mut self) {
        let kind = if self.protocol == MODERN {
            "subscribe"
        } else {
            "start"
        };
        let query = "subscription { heartbeat(intervalMs: 100, count: 1) }";
        self.ws
            .send(json!({ "id": "quiet", "type": kind, "payload": { "query": query } }))
            .await;
        assert!(self.event("quiet").await.is_string());
        self.complete("quiet").await;
    }

    /// Closes the socket and waits until the server has closed its side.
    pub async fn close(mut self) {
        self.ws.stream.close(None).await.expect("close sent");
        let closed = tokio::time::timeout(WAIT, async {
            while let Some(Ok(_)) = self.ws.stream.next().await {}
        })
        .await;
        assert!(
            closed.is_ok(),
            "{}: server closed within 5 s",
            self.protocol
        );
    }
}

/// A graphql-transport-ws socket for `tokens[0]` and a graphql-ws one for `tokens[1]`, each
/// subscribed to `chatEvents(chat_id)` as `chat`.
async fn chat_subscribers(app: &TestApp, tokens: [&str; 2], chat_id: &str) -> Vec<Socket> {
    let mut sockets = Vec::new();
    for (token, protocol) in tokens.into_iter().zip(PROTOCOLS) {
        let mut socket = Socket::open(app, token, protocol).await;
        socket
            .subscribe("chat", CHAT_EVENTS, json!({ "chatId": chat_id }))
            .await;
        sockets.push(socket);
    }
    sockets
}

async fn set_typing(app: &TestApp, token: &str, chat_id: &str, is_typing: bool) {
    let data = app
        .gql_ok(
            Some(token),
            "mutation($id: ID!, $on: Boolean!) { setTyping(chatId: $id, isTyping: $on) }",
            json!({ "id": chat_id, "on": is_typing }),
        )
        .await;
    assert_eq!(data["setTyping"], true);
}

async fn remove_member(app: &TestApp, token: &str, chat_id: &str, user_id: &str) {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $user: ID!) { removeMember(chatId: $id, userId: $user) }",
        json!({ "id": chat_id, "user": user_id }),
    )
    .await;
}

/// (cursor, id) of every message of a page of `messages(chatId, …)` with `args`.
async fn history(app: &TestApp, token: &str, chat_id: &str, args: &str) -> Vec<(String, Value)> {
    let query = format!(
        "query($id: ID!) {{ messages(chatId: $id, {args}) {{ edges {{ cursor node {{ id content }} }} }} }}"
    );
    let data = app
        .gql_ok(Some(token), &query, json!({ "id": chat_id }))
        .await;
    data["messages"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["cursor"].as_str().unwrap().to_string(), e["node"].clone()))
        .collect()
}

fn assert_typing(event: &Value, chat_id: &str, user_id: &str, is_typing: bool) {
    assert_eq!(event["__typename"], "TypingChanged", "{event}");
    assert_eq!(event["chatId"], chat_id, "{event}");
    assert_eq!(event["user"]["id"], user_id, "{event}");
    assert_eq!(event["isTyping"], is_typing, "{event}");
}

#[tokio::test]
async fn every_subscribed_member_gets_each_message_once_and_in_order() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "Team", &["ben", "cyd"]).await;
    let direct = open_direct(&app, &ana.token, "ben").await;
    let mut sockets = chat_subscribers(&app, [&ben.token, &cyd.token], &group).await;

    let ids = send_many(&app, &ana.token, &group, "hello ", 5).await;
    send(&app, &ana.token, &direct, "elsewhere").await;
    set_typing(&app, &ana.token, &group, true).await;

    for socket in &mut sockets {
        for (i, id) in ids.iter().enumerate() {
            let event = socket.event("chat").await;
            let message = &event["message"];
            assert_eq!(event["__typename"], "MessageCreated", "{event}");
            assert_eq!(
                message["id"],
                id.as_str(),
                "{}: message {i}",
                socket.protocol
            );
            assert_eq!(message["content"], format!("hello {i}"), "{event}");
            assert_eq!(message["chatId"], group, "{event}");
            assert_eq!(message["sender"]["id"], ana.id, "{event}");
        }
        // The marker comes next: no duplicate, and nothing from the other chat.
        assert_typing(&socket.event("chat").await, &group, &ana.id, true);
    }
}

#[tokio::test]
async fn edits_deletes_reactions_reads_and_typing_arrive_as_their_events() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "Team", &["ben", "cyd"]).await;
    let mut sockets = chat_subscribers(&app, [&ben.token, &cyd.token], &group).await;

    let id = send(&app, &ana.token, &group, "first draft").await;
    let vars = json!({ "id": id });
    app.gql_ok(
        Some(&ana.token),
        "mutation($id: ID!) { editMessage(id: $id, content: \"final text\") { id } }",
        vars.clone(),
    )
    .await;
    app.gql_ok(
        Some(&ben.token),
        "mutation($id: ID!) { toggleReaction(messageId: $id, emoji: \"👍\") { id } }",
        vars.clone(),
    )
    .await;
    app.gql_ok(
        Some(&cyd.token),
        "mutation($id: ID!) { markRead(messageId: $id) }",
        vars.clone(),
    )
    .await;
    set_typing(&app, &ana.token, &group, true).await;
    set_typing(&app, &ana.token, &group, false).await;
    app.gql_ok(
        Some(&ana.token),
        "mutation($id: ID!) { deleteMessage(id: $id) { id } }",
        vars,
    )
    .await;
    let cursor = history(&app, &cyd.token, &group, "last: 1").await[0]
        .0
        .clone();

    for socket in &mut sockets {
        let reacted_by_me = socket.protocol == MODERN; // ben reacted, cyd did not
        let created = socket.event("chat").await;
        assert_eq!(created["__typename"], "MessageCreated", "{created}");
        assert_eq!(created["message"]["content"], "first draft", "{created}");

        let edited = socket.event("chat").await;
        assert_eq!(edited["__typename"], "MessageEdited", "{edited}");
        assert_eq!(edited["message"]["id"], id.as_str(), "{edited}");
        assert_eq!(edited["message"]["content"], "final text", "{edited}");
        assert!(edited["message"]["editedAt"].is_string(), "{edited}");

        let reaction = socket.event("chat").await;
        assert_eq!(reaction["__typename"], "ReactionChanged", "{reaction}");
        assert_eq!(reaction["message"]["id"], id.as_str(), "{reaction}");
        assert_eq!(
            reaction["message"]["reactions"],
            json!([{ "emoji": "👍", "count": 1, "reactedByMe": reacted_by_me, "users": [{ "id": ben.id }] }]),
            "{}",
            socket.protocol
        );

        let read = socket.event("chat").await;
        assert_eq!(read["__typename"], "ReadStatusChanged", "{read}");
        assert_eq!(read["chatId"], group, "{read}");
        assert_eq!(read["user"]["id"], cyd.id, "{read}");
        assert_eq!(read["lastReadCursor"], cursor, "{read}");

        assert_typing(&socket.event("chat").await, &group, &ana.id, true);
        assert_typing(&socket.event("chat").await, &group, &ana.id, false);

        let deleted = socket.event("chat").await;
        assert_eq!(
            deleted,
            json!({ "__typename": "MessageDeleted", "chatId": group, "messageId": id }),
            "{}",
            socket.protocol
        );
        socket.expect_quiet().await;
    }
}

/// Subscribers render each event with loads shared by all of them for that one event, never
/// with what an earlier event loaded: after each reaction both sockets see the reactions as they
/// are now, each with its own `reactedByMe`.
#[tokio::test]
async fn each_event_is_rendered_with_its_own_loads_not_an_earlier_events() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "Team", &["ben", "cyd"]).await;
    let mut sockets = chat_subscribers(&app, [&ana.token, &ben.token], &group).await;
    let id = send(&app, &ana.token, &group, "react to me").await;
    for socket in &mut sockets {
        let created = socket.event("chat").await;
        assert_eq!(created["message"]["sender"]["id"], ana.id, "{created}");
    }
    let steps = [
        (&ben.token, json!([{ "id": ben.id }])),
        (&cyd.token, json!([{ "id": ben.id }, { "id": cyd.id }])),
    ];
    for (count, (token, users)) in steps.into_iter().enumerate() {
        app.gql_ok(
            Some(token),
            "mutation($id: ID!) { toggleReaction(messageId: $id, emoji: \"👍\") { id } }",
            json!({ "id": id }),
        )
        .await;
        for socket in &mut sockets {
            let reacted_by_me = socket.protocol == LEGACY; // the second socket is ben's
            let reaction = socket.event("chat").await;
            assert_eq!(
                reaction["message"]["reactions"],
                json!([{ "emoji": "👍", "count": count + 1, "reactedByMe": reacted_by_me, "users": users }]),
                "{}",
                socket.protocol
            );
        }
    }
}

#[tokio::test]
async fn typing_stops_by_itself_about_six_seconds_after_the_last_refresh() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "Team", &["ben", "cyd"]).await;
    let mut sockets = chat_subscribers(&app, [&ben.token, &cyd.token], &group).await;

    set_typing(&app, &ana.token, &group, true).await;
    let started = Instant::now();
    for socket in &mut sockets {
        assert_typing(&socket.event("chat").await, &group, &ana.id, true);
    }
    for socket in &mut sockets {
        let stopped = socket.event_within("chat", Duration::from_secs(10)).await;
        assert_typing(&stopped, &group, &ana.id, false);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(5) && elapsed <= Duration::from_secs(8),
        "typing stopped after {elapsed:?}; the TTL is 6 s"
    );
}

#[tokio::test]
async fn chat_events_are_refused_to_those_who_may_not_see_or_join_the_chat() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let eve = app.register("eve").await;
    let sam = register_staff(&app, "sam").await;
    let group = create_group(&app, &ana.token, "Secret", &[]).await;
    let private_room = create_room(&app, &ana.token, "Den", true).await;
    let public_room = create_room(&app, &ana.token, "Lobby", false).await;
    let unknown = uuid::Uuid::now_v7().to_string();

    for protocol in PROTOCOLS {
        let mut socket = Socket::open(&app, &eve.token, protocol).await;
        for (chat, code) in [
            (&group, "NOT_FOUND"),
            (&private_room, "NOT_FOUND"),
            (&unknown, "NOT_FOUND"),
            (&public_room, "FORBIDDEN"),
        ] {
            socket
                .subscribe("chat", CHAT_EVENTS, json!({ "chatId": chat }))
                .await;
            let error = socket.refusal("chat").await;
            assert_eq!(error["extensions"]["code"], code, "{protocol}: {error}");
        }
        send(&app, &ana.token, &group, "not for eve").await;
        socket.expect_quiet().await;

        let mut staff = Socket::open(&app, &sam.token, protocol).await;
        staff
            .subscribe("chat", CHAT_EVENTS, json!({ "chatId": group }))
            .await;
        send(&app, &ana.token, &group, "staff may read").await;
        let event = staff.event("chat").await;
        assert_eq!(event["__typename"], "MessageCreated", "{event}");
        assert_eq!(event["message"]["content"], "staff may read", "{event}");
    }
}

#[tokio::test]
async fn a_removed_member_gets_member_left_then_complete_and_nothing_after() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let dan = app.register("dan").await;
    let group = create_group(&app, &ana.token, "Team", &["ben", "cyd", "dan"]).await;
    let mut removed = chat_subscribers(&app, [&ben.token, &cyd.token], &group).await;
    let mut witness = Socket::open(&app, &dan.token, MODERN).await;
    witness
        .subscribe("chat", CHAT_EVENTS, json!({ "chatId": group }))
        .await;

    let users = [&ben, &cyd];
    for (i, user) in users.into_iter().enumerate() {
        remove_member(&app, &ana.token, &group, &user.id).await;
        let left =
            json!({ "__typename": "MemberLeft", "chatId": group, "user": { "id": user.id } });
        // Every socket still subscribed hears it; the removed member's subscription then ends.
        for socket in removed[i..].iter_mut().chain([&mut witness]) {
            assert_eq!(socket.event("chat").await, left, "{}", socket.protocol);
        }
        removed[i].complete("chat").await;
    }

    send(&app, &ana.token, &group, "after they left").await;
    let event = witness.event("chat").await;
    assert_eq!(event["message"]["content"], "after they left", "{event}");
    for socket in &mut removed {
        socket.expect_quiet().await;
        socket
            .subscribe("again", CHAT_EVENTS, json!({ "chatId": group }))
            .await;
        let error = socket.refusal("again").await;
        assert_eq!(error["extensions"]["code"], "NOT_FOUND", "{error}");
    }
}

#[tokio::test]
async fn my_events_follow_chats_i_am_added_to_and_stop_when_i_am_removed() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let users = [&ben, &cyd];
    let mut directs = Vec::new();
    let mut sockets = Vec::new();
    for (user, protocol) in users.into_iter().zip(PROTOCOLS) {
        directs.push(open_direct(&app, &ana.token, &user.username).await);
        let mut socket = Socket::open(&app, &user.token, protocol).await;
        socket.subscribe("me", MY_EVENTS, json!({})).await;
        sockets.push(socket);
    }

    let group = create_group(&app, &ana.token, "Fresh", &["ben", "cyd"]).await;
    send(&app, &ana.token, &group, "welcome").await;
    for socket in &mut sockets {
        let added = socket.event("me").await;
        assert_eq!(
            added,
            json!({ "__typename": "AddedToChat", "chat": { "id": group, "name": "Fresh" } }),
            "{}",
            socket.protocol
        );
        // Being added also notified them (`NotificationCreated`, on their own topic).
        let created = socket
            .event_of_type("me", "MessageCreated", &["NotificationCreated"])
            .await;
        assert_eq!(created["message"]["chatId"], group, "{created}");
        assert_eq!(created["message"]["content"], "welcome", "{created}");
    }

    for (socket, user) in sockets.iter_mut().zip(users) {
        remove_member(&app, &ana.token, &group, &user.id).await;
        // MemberLeft (of ben, and the chat's own about me) may come first, and the notification
        // of being added when it came after the message; nothing else may.
        let removed = socket
            .event_of_type(
                "me",
                "RemovedFromChat",
                &["MemberLeft", "NotificationCreated"],
            )
            .await;
        assert_eq!(removed["chatId"], group, "{removed}");
    }
    send(&app, &ana.token, &group, "not for you").await;
    for (socket, direct) in sockets.iter_mut().zip(&directs) {
        send(&app, &ana.token, direct, "marker").await;
        let next = socket.event("me").await;
        assert_eq!(next["__typename"], "MessageCreated", "{next}");
        assert_eq!(next["message"]["chatId"], direct.as_str(), "{next}");
        assert_eq!(next["message"]["content"], "marker", "{next}");
    }
}

#[tokio::test]
async fn after_a_reconnect_history_resumes_from_the_last_cursor_seen() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let direct = open_direct(&app, &ana.token, "ben").await;

    for protocol in PROTOCOLS {
        let mut socket = Socket::open(&app, &ben.token, protocol).await;
        socket
            .subscribe("chat", CHAT_EVENTS, json!({ "chatId": direct }))
            .await;
        send_many(&app, &ana.token, &direct, "seen ", 2).await;
        socket.event("chat").await;
        let last_seen = socket.event("chat").await["message"]["id"].clone();
        let (cursor, node) = history(&app, &ben.token, &direct, "last: 1")
            .await
            .remove(0);
        assert_eq!(node["id"], last_seen);
        socket.close().await;

        let missed = send_many(&app, &ana.token, &direct, "missed ", 3).await;
        let page = history(
            &app,
            &ben.token,
            &direct,
            &format!("first: 100, after: \"{cursor}\""),
        )
        .await;
        let expected: Vec<Value> = missed
            .iter()
            .enumerate()
            .map(|(i, id)| json!({ "id": id, "content": format!("missed {i}") }))
            .collect();
        let nodes: Vec<Value> = page.into_iter().map(|(_, node)| node).collect();
        assert_eq!(nodes, expected, "{protocol}");

        // Back online: only new messages arrive live, nothing is replayed.
        let mut socket = Socket::open(&app, &ben.token, protocol).await;
        socket
            .subscribe("chat", CHAT_EVENTS, json!({ "chatId": direct }))
            .await;
        send(&app, &ana.token, &direct, "live again").await;
        let event = socket.event("chat").await;
        assert_eq!(event["message"]["content"], "live again", "{event}");
        socket.close().await;
    }
}

#[tokio::test]
async fn a_session_revoked_after_connecting_loses_its_socket_and_its_subscriptions() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    app.register("ben").await;
    let direct = open_direct(&app, &ana.token, "ben").await;

    for protocol in PROTOCOLS {
        let login = app.login("ana", crate::helpers::PASSWORD).await;
        let token = login["data"]["login"]["accessToken"].as_str().unwrap();
        let mut socket = Socket::open(&app, token, protocol).await;
        socket
            .subscribe("chat", CHAT_EVENTS, json!({ "chatId": direct }))
            .await;
        app.gql_ok(Some(token), "mutation { logout }", json!({}))
            .await;
        // The server closes the socket with 4403 (no further events can reach it).
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                match socket.ws.stream.next().await {
                    Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                        return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                    }
                    Some(Ok(_)) => continue,
                    _ => return None,
                }
            }
        })
        .await
        .expect("closed within 5 s");
        let (code, reason) = closed.expect("a close frame");
        assert_eq!(code, 4403, "{protocol}");
        assert!(reason.contains("revoked"), "{protocol}: {reason}");
        send(&app, &ana.token, &direct, "after logout").await;
    }
}

/// A `chatEvents` subscription run in process, its stream polled only when the test reads it,
/// so it can fall behind the bus ring on purpose.
fn subscription_in_process(
    app: &TestApp,
    token: &str,
    chat_id: &str,
) -> impl futures_util::Stream<Item = async_graphql::Response> + use<> {
    let claims = app.state.keys.decode(token).unwrap();
    let viewer = goftgu::auth::Viewer {
        user_id: claims.sub,
        session_id: claims.jti,
        is_staff: false,
        token_expires_at: chrono::DateTime::from_timestamp(claims.exp, 0).unwrap(),
    };
    let query = "subscription($c: ID!) { chatEvents(chatId: $c) { __typename
        ... on MessageCreated { cursor message { content } }
        ... on ResyncRequired { chatId missed reason } } }";
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(json!({ "c": chat_id })))
        .data(goftgu::auth::AuthState::Authenticated(viewer));
    let documents = std::sync::Arc::new(goftgu::graphql::documents::DocumentCache::new(
        &app.state.metrics,
    ));
    goftgu::graphql::build_schema(app.state.clone(), documents).execute_stream(request)
}

#[tokio::test]
async fn a_subscriber_that_falls_behind_the_ring_still_gets_every_message_once_in_order() {
    let (app, _dir) = crate::helpers::spawn_app_with(|c| c.limits.send_per_minute = 0).await;
    let alice = app.register("alice").await;
    let bob = app.register("bob").await;
    let chat = create_group(&app, &alice.token, "burst", &["bob"]).await;
    let mut events = Box::pin(subscription_in_process(&app, &bob.token, &chat));
    // A message that arrives proves the subscription is running (the stream sets itself up when
    // first polled); then it is not read for a while.
    let mut warm_ups = 0;
    loop {
        warm_ups += 1;
        send(&app, &alice.token, &chat, &format!("warm-up {warm_ups}")).await;
        if let Ok(first) = tokio::time::timeout(Duration::from_millis(500), events.next()).await {
            let first = first.unwrap().data.into_json().unwrap();
            let content = first["chatEvents"]["message"]["content"].as_str().unwrap();
            assert!(content.starts_with("warm-up"), "{first}");
            // Any later warm-up is still to come: wait for the last one.
            let last = format!("warm-up {warm_ups}");
            if content != last {
                loop {
                    let next = tokio::time::timeout(WAIT, events.next()).await.unwrap();
                    let next = next.unwrap().data.into_json().unwrap();
                    if next["chatEvents"]["message"]["content"] == last.as_str() {
                        break;
                    }
                }
            }
            break;
        }
    }
    let burst = goftgu::events::hub::CAPACITY + 44;
    send_many(&app, &alice.token, &chat, "burst ", burst).await;

    let (mut contents, mut cursors, mut resyncs) = (Vec::new(), Vec::new(), 0);
    while contents.len() < burst {
        let response = tokio::time::timeout(WAIT, events.next())
            .await
            .expect("every message arrives")
            .unwrap();
        assert!(response.errors.is_empty(), "{:?}", response.errors);
        let event = response.data.into_json().unwrap()["chatEvents"].clone();
        match event["__typename"].as_str().unwrap() {
            "MessageCreated" => {
                contents.push(event["message"]["content"].as_str().unwrap().to_string());
                cursors.push(event["cursor"].as_str().unwrap().to_string());
            }
            "ResyncRequired" => {
                assert!(event["missed"].as_u64().unwrap() > 0, "{event}");
                assert_eq!(event["chatId"], chat.as_str(), "the notice names its chat");
                assert!(
                    contents.is_empty() || contents.len() == burst,
                    "the notice follows the filled messages and precedes nothing missing: {event}"
                );
                resyncs += 1;
            }
            other => panic!("unexpected {other}: {event}"),
        }
    }
    let expected: Vec<String> = (0..burst).map(|i| format!("burst {i}")).collect();
    assert_eq!(contents, expected, "every message once, in order");
    // The notice for the dropped events (typing, reactions, … cannot be replayed) comes after
    // the filled messages, and nothing else follows.
    if resyncs == 0 {
        let response = tokio::time::timeout(WAIT, events.next())
            .await
            .unwrap()
            .unwrap();
        let event = response.data.into_json().unwrap()["chatEvents"].clone();
        assert_eq!(event["__typename"], "ResyncRequired", "{event}");
        assert_eq!(event["chatId"], chat.as_str(), "the notice names its chat");
        resyncs += 1;
    }
    assert_eq!(resyncs, 1);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events.next())
            .await
            .is_err(),
        "no duplicates after the ring is drained"
    );
    eprintln!(
        "burst of {burst} past a ring of {}: delivered {} in order, {} filled from the database, {resyncs} resync",
        goftgu::events::hub::CAPACITY,
        contents.len(),
        app.state
            .bus
            .stats()
            .filled
            .load(std::sync::atomic::Ordering::Relaxed)
    );

    // The live cursors are the history cursors: resuming after any of them works.
    let after = &cursors[149];
    let page = history(
        &app,
        &bob.token,
        &chat,
        &format!("after: \"{after}\", first: 3"),
    )
    .await;
    let resumed: Vec<&str> = page
        .iter()
        .map(|(_, node)| node["content"].as_str().unwrap())
        .collect();
    assert_eq!(resumed, ["burst 150", "burst 151", "burst 152"]);
    assert_eq!(page[0].0, cursors[150], "same cursor as a history page");
}
