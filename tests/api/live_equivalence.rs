//! The shared rendering of live subscriptions against a direct execution. goftgu renders each
//! event once per subscription shape and splices the bytes into every socket's frame; here every
//! `chatEvents`, `myEvents` and `presence` subscription of the playground runs on sockets of two
//! users (one per protocol) and, beside them, straight through the schema for the same users, and
//! every event's payload must be the JSON the direct execution serializes.
use std::{sync::Arc, time::Duration};

use async_graphql::{
    Request, Variables,
    futures_util::{StreamExt, stream::BoxStream},
    parser::types::{OperationType, Selection},
};
use goftgu::{
    auth::AuthState,
    graphql::{AppSchema, build_schema, documents::DocumentCache},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    file_bytes::wav,
    files::{file_part, post_expect, text_part},
    fixtures::{create_group, create_room, join_room, promote, send},
    helpers::{TestApp, TestUser, spawn_app},
    live::{LEGACY, MODERN, Socket},
    metrics::{sample, scrape},
};

/// How long a subscriber waits for one more event before the stream counts as quiet.
const QUIET: Duration = Duration::from_millis(1500);

/// Viewer-dependent fields of the playground's selections and a field of the same place that is
/// the same for everyone: the documents with these swapped are rendered once per shape.
const FOR_EVERYONE: [(&str, &str); 3] = [
    ("reactedByMe", "count"),
    ("title", "id"),
    ("isMuted", "isSpeaking"),
];

/// The playground's `chatEvents`, `myEvents` and `presence` subscriptions: (document, operation,
/// root field, the names of its variables), each twice: as written (most select a field that
/// depends on the viewer, so they run per socket) and with those fields swapped for
/// viewer-independent ones (so goftgu renders them once per shape).
fn playground_subscriptions() -> Vec<(String, String, String, Vec<String>)> {
    let mut found = Vec::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playground");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("playground")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "graphql"))
        .collect();
    files.sort();
    let texts = files.iter().flat_map(|path| {
        let text = std::fs::read_to_string(path).expect("playground file");
        let shared = FOR_EVERYONE
            .iter()
            .fold(text.clone(), |text, (mine, everyone)| {
                text.replace(mine, everyone)
            });
        [text, shared]
    });
    for text in texts {
        let document = async_graphql::parser::parse_query(&text).expect("playground parses");
        for (name, operation) in document.operations.iter() {
            if operation.node.ty != OperationType::Subscription {
                continue;
            }
            let Some(Selection::Field(field)) = operation
                .node
                .selection_set
                .node
                .items
                .first()
                .map(|s| &s.node)
            else {
                continue;
            };
            let root = field.node.name.node.to_string();
            if ["chatEvents", "myEvents", "presence"].contains(&root.as_str()) {
                let name = name.expect("playground operations are named").to_string();
                let variables = operation
                    .node
                    .variable_definitions
                    .iter()
                    .map(|v| v.node.name.node.to_string())
                    .collect();
                found.push((text.clone(), name, root, variables));
            }
        }
    }
    found
}

/// One subscription followed both ways for one user.
struct Pair {
    label: String,
    socket: Socket,
    id: String,
    direct: BoxStream<'static, async_graphql::Response>,
}

impl Pair {
    /// The payloads of every `next`/`data` frame until the socket has been quiet for `QUIET`,
    /// as raw text.
    async fn socket_payloads(&mut self) -> Vec<String> {
        let kind = if self.socket.protocol == MODERN {
            "next"
        } else {
            "data"
        };
        let prefix = format!(r#"{{"type":"{kind}","id":{},"payload":"#, json!(self.id));
        let mut payloads = Vec::new();
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(QUIET, self.socket.ws.stream.next()).await
        {
            let Message::Text(text) = frame else { continue };
            let text = text.as_str();
            let payload = text
                .strip_prefix(prefix.as_str())
                .and_then(|rest| rest.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{}: unexpected frame {text}", self.label));
            payloads.push(payload.to_string());
        }
        payloads
    }

    /// What the direct execution produced, serialized as async-graphql serializes it.
    async fn direct_payloads(&mut self) -> Vec<String> {
        let mut payloads = Vec::new();
        while let Ok(Some(response)) = tokio::time::timeout(QUIET, self.direct.next()).await {
            payloads.push(serde_json::to_string(&response).unwrap());
        }
        payloads
    }
}

/// A payload in a form two executions can be compared in: as JSON, without the server's clock
/// (`serverTime` is read when the event renders). Not as bytes: async-graphql writes an
/// object's fields in the order they finish resolving (`FuturesUnordered`), so even two direct
/// executions may order keys differently.
fn comparable(payload: &str) -> String {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("serverTime");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value: Value = serde_json::from_str(payload).unwrap();
    strip(&mut value);
    value.to_string()
}

async fn direct(
    schema: &AppSchema,
    app: &TestApp,
    user: &TestUser,
    document: &str,
    operation: &str,
    variables: &Value,
) -> BoxStream<'static, async_graphql::Response> {
    let viewer = goftgu::domain::sessions::authenticate(&app.state, &user.token)
        .await
        .expect("token is valid");
    let request = Request::new(document)
        .operation_name(operation)
        .variables(Variables::from_json(variables.clone()))
        .data(AuthState::Authenticated(viewer));
    schema.execute_stream(request).boxed()
}

#[tokio::test]
async fn every_playground_subscription_renders_what_a_direct_execution_makes() {
    let (app, _dir) = spawn_app().await;
    let documents = Arc::new(DocumentCache::new(&app.state.metrics));
    let schema = build_schema(app.state.clone(), documents);
    let alice = app.register("eq_alice").await;
    let bob = app.register("eq_bob").await;
    let carol = app.register("eq_carol").await;
    let dave = app.register("eq_dave").await;
    let room = create_room(&app, &alice.token, "eq room", false).await;
    join_room(&app, &bob.token, &room).await;
    join_room(&app, &carol.token, &room).await;
    let track_parts = [
        text_part("room_id", &room),
        text_part("title", "eq tune"),
        file_part("eq.wav", "audio/wav", wav(3)),
    ];
    let track = post_expect(&app, &alice.token, "/music/upload", &track_parts, 201).await;
    let track = track["id"].as_str().unwrap().to_string();

    let subscriptions = playground_subscriptions();
    let roots: Vec<&str> = subscriptions
        .iter()
        .map(|(_, _, r, _)| r.as_str())
        .collect();
    for root in ["chatEvents", "myEvents", "presence"] {
        assert!(
            roots.contains(&root),
            "the playground subscribes to {root}: {roots:?}"
        );
    }
    let mut pairs = Vec::new();
    for (n, (document, operation, _, names)) in subscriptions.iter().enumerate() {
        let variables: serde_json::Map<String, Value> = names
            .iter()
            .map(|name| {
                let value = match name.as_str() {
                    "chatId" | "roomId" => json!(room),
                    "userIds" => json!([dave.id, alice.id]),
                    other => panic!("{operation}: no value for ${other}"),
                };
                (name.clone(), value)
            })
            .collect();
        let variables = Value::Object(variables);
        for (user, protocol) in [(&bob, MODERN), (&carol, LEGACY)] {
            let mut socket = Socket::open(&app, &user.token, protocol).await;
            let id = format!("s{n}");
            let kind = if protocol == MODERN {
                "subscribe"
            } else {
                "start"
            };
            let payload =
                json!({ "query": document, "operationName": operation, "variables": variables });
            socket
                .ws
                .send(json!({ "id": id, "type": kind, "payload": payload }))
                .await;
            let direct = direct(&schema, &app, user, document, operation, &variables).await;
            pairs.push(Pair {
                label: format!("#{n} {operation} as {} over {protocol}", user.username),
                socket,
                id,
                direct,
            });
        }
    }
    // Let every subscription start: the sockets' resolvers check access and subscribe to the
    // bus as the server reads them, the direct ones as they are first polled (a presence
    // subscription's current states are buffered as they come).
    let mut early: Vec<Vec<String>> = Vec::new();
    for pair in &mut pairs {
        let mut first = Vec::new();
        while let Ok(Some(response)) =
            tokio::time::timeout(Duration::from_millis(300), pair.direct.next()).await
        {
            first.push(serde_json::to_string(&response).unwrap());
        }
        early.push(first);
    }

    // Every kind of event the playground's selections name.
    let message = send(&app, &alice.token, &room, "hello").await;
    let edit = "mutation($id: ID!) { editMessage(id: $id, content: \"hello again\") { id } }";
    app.gql_ok(Some(&alice.token), edit, json!({ "id": message }))
        .await;
    let react = "mutation($id: ID!) { toggleReaction(messageId: $id, emoji: \"👍\") { id } }";
    app.gql_ok(Some(&bob.token), react, json!({ "id": message }))
        .await;
    for pin in ["pinMessage", "unpinMessage"] {
        let query = format!("mutation($id: ID!) {{ {pin}(messageId: $id) {{ id }} }}");
        app.gql_ok(Some(&alice.token), &query, json!({ "id": message }))
            .await;
    }
    let poll = "mutation($c: ID!) { createPoll(input: { chatId: $c, question: \"eq?\", options: [\"a\", \"b\"] }) { id } }";
    let poll = app
        .gql_ok(Some(&alice.token), poll, json!({ "c": room }))
        .await;
    let vote = "mutation($p: ID!) { votePoll(pollId: $p, options: [1]) { id } }";
    app.gql_ok(
        Some(&bob.token),
        vote,
        json!({ "p": poll["createPoll"]["id"] }),
    )
    .await;
    let read = "mutation($c: ID!) { markChatRead(chatId: $c) }";
    app.gql_ok(Some(&carol.token), read, json!({ "c": room }))
        .await;
    let typing = "mutation($c: ID!) { setTyping(chatId: $c, isTyping: true) }";
    app.gql_ok(Some(&bob.token), typing, json!({ "c": room }))
        .await;
    join_room(&app, &dave.token, &room).await;
    promote(&app, &alice.token, &room, &dave.id).await;
    let dave_socket = Socket::open(&app, &dave.token, MODERN).await;
    let enqueue = "mutation($r: ID!, $t: ID!) { enqueueTrack(roomId: $r, trackId: $t) { id } }";
    app.gql_ok(
        Some(&alice.token),
        enqueue,
        json!({ "r": room, "t": track }),
    )
    .await;
    create_group(&app, &alice.token, "eq group", &["eq_bob", "eq_carol"]).await;
    let voice = "mutation($r: ID!) { joinVoice(roomId: $r) { joinedAt } }";
    app.gql_ok(Some(&alice.token), voice, json!({ "r": room }))
        .await;
    let speaking = "mutation($r: ID!) { setVoiceState(roomId: $r, input: { isSpeaking: true }) { isSpeaking } }";
    app.gql_ok(Some(&alice.token), speaking, json!({ "r": room }))
        .await;
    let leave = "mutation($r: ID!) { leaveVoice(roomId: $r) }";
    app.gql_ok(Some(&alice.token), leave, json!({ "r": room }))
        .await;
    let delete = "mutation($id: ID!) { deleteMessage(id: $id) { id } }";
    app.gql_ok(Some(&alice.token), delete, json!({ "id": message }))
        .await;
    dave_socket.close().await;
    // Typing ends now rather than by itself later, while events are being compared.
    let stop = "mutation($c: ID!) { setTyping(chatId: $c, isTyping: false) }";
    app.gql_ok(Some(&bob.token), stop, json!({ "c": room }))
        .await;

    // Every pair is read at once: one quiet period for all, not one each.
    let read = pairs.iter_mut().map(|pair| async move {
        let direct = pair.direct_payloads().await;
        let shared = pair.socket_payloads().await;
        (pair.label.clone(), direct, shared)
    });
    let read = async_graphql::futures_util::future::join_all(read).await;
    let mut compared = 0;
    for ((label, direct, shared), early) in read.into_iter().zip(early) {
        let direct = [early, direct].concat();
        assert!(
            !direct.is_empty(),
            "{}: the direct execution saw events",
            label
        );
        // Across chats (`myEvents`) two subscribers may interleave topics differently; within
        // one the order is checked by the live tests. Compared as sorted lists.
        let mut direct: Vec<String> = direct.iter().map(|p| comparable(p)).collect();
        let mut shared: Vec<String> = shared.iter().map(|p| comparable(p)).collect();
        direct.sort();
        shared.sort();
        assert_eq!(shared, direct, "{}", label);
        compared += direct.len();
    }
    assert!(compared >= 40, "enough events compared: {compared}");
    let renders = sample(&scrape(&app).await, "goftgu_live_renders_total");
    assert!(
        renders > 0.0,
        "the swapped documents were rendered per shape"
    );
}

/// Sockets whose subscriptions have one shape share each event's rendering; a selection that
/// reads `reactedByMe` runs per socket (no shared rendering). Counted by
/// `goftgu_live_renders_total` against `goftgu_deliveries_total`.
#[tokio::test]
async fn sockets_of_one_shape_share_a_rendering_and_per_viewer_selections_do_not() {
    let (app, _dir) = spawn_app().await;
    let alice = app.register("share_alice").await;
    let bob = app.register("share_bob").await;
    let carol = app.register("share_carol").await;
    let room = create_room(&app, &alice.token, "share room", false).await;
    join_room(&app, &bob.token, &room).await;
    join_room(&app, &carol.token, &room).await;
    let shared = "subscription($c: ID!) { chatEvents(chatId: $c) { ... on MessageCreated { message { content sender { username } } } } }";
    let mine = "subscription($c: ID!) { chatEvents(chatId: $c) { ... on MessageCreated { message { content reactions { reactedByMe } } } } }";
    for (query, renders_per_message) in [(shared, 1.0), (mine, 0.0)] {
        let mut sockets = Vec::new();
        for (user, protocol) in [(&alice, MODERN), (&bob, LEGACY), (&carol, MODERN)] {
            let mut socket = Socket::open(&app, &user.token, protocol).await;
            socket.subscribe("1", query, json!({ "c": room })).await;
            sockets.push(socket);
        }
        let body = scrape(&app).await;
        let (renders, deliveries) = (
            sample(&body, "goftgu_live_renders_total"),
            sample(&body, "goftgu_deliveries_total"),
        );
        for n in 0..4 {
            send(&app, &alice.token, &room, &format!("shared {n}")).await;
        }
        for socket in &mut sockets {
            for n in 0..4 {
                let event = socket.event("1").await;
                assert_eq!(event["message"]["content"], format!("shared {n}"));
            }
        }
        let body = scrape(&app).await;
        let renders = sample(&body, "goftgu_live_renders_total") - renders;
        let deliveries = sample(&body, "goftgu_deliveries_total") - deliveries;
        assert_eq!(deliveries, 12.0, "{query}");
        assert_eq!(renders, 4.0 * renders_per_message, "{query}");
        for socket in sockets {
            socket.close().await;
        }
    }
}
