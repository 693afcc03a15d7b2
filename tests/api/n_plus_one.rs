//! The chat list runs a fixed number of SQL statements however many chats it shows: members,
//! last messages, unread counts and roles are batched, not fetched per chat.
use std::time::Duration;

use serde_json::json;

use crate::fixtures::{create_group, open_direct, send};
use crate::helpers::{TestApp, TestUser, spawn_app_with};

const LIST: &str = "{ chats(first: 50) { nodes { id title kind members { nodes { user { username displayName } role } } lastMessage { content sender { username } } unreadCount memberCount myRole archived } } }";

/// Background sweeps far apart (playback auto-advance, voice seats), so none of their statements
/// land inside a request's count.
pub(crate) fn quiet_background(config: &mut goftgu::config::Config) {
    config.playback_tick_ms = 3_600_000;
    config.voice.grace_seconds = 3_600;
}

/// The statement counter once nothing has run for a moment (nothing left over from the last
/// request can land inside the measurement).
pub(crate) async fn quiet_count(app: &TestApp) -> u64 {
    let mut last = app.state.sql_statement_count();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = app.state.sql_statement_count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Statements run by one chat-list request, after checking it listed `expected` chats in full.
async fn statements_for_list(app: &TestApp, me: &TestUser, expected: usize) -> u64 {
    let before = quiet_count(app).await;
    let data = app.gql_ok(Some(&me.token), LIST, json!({})).await;
    let after = quiet_count(app).await;
    let nodes = data["chats"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), expected);
    for node in nodes {
        let members = node["members"]["nodes"].as_array().unwrap();
        assert_eq!(
            members.len() as i64,
            node["memberCount"].as_i64().unwrap(),
            "{node}"
        );
        assert!(
            members
                .iter()
                .any(|m| m["user"]["username"] == me.username.as_str()),
            "{node}"
        );
        assert!(
            members.iter().all(|m| m["user"]["displayName"].is_string()),
            "{node}"
        );
        assert!(
            node["lastMessage"]["sender"]["username"].is_string(),
            "{node}"
        );
        assert!(node["unreadCount"].as_i64().unwrap() >= 1, "{node}");
        assert_eq!(node["archived"], false);
    }
    after - before
}

/// Adds chats `range` for `me`: every third a direct chat with a new user, the others groups
/// with one or two of `friends`; in each, a friend writes, I answer, the friend writes again
/// (so every chat has at least one unread message).
async fn add_chats(
    app: &TestApp,
    me: &TestUser,
    friends: &[TestUser],
    range: std::ops::Range<usize>,
) {
    for i in range {
        let (chat, writer) = if i % 3 == 0 {
            let partner = app.register(&format!("partner{i}")).await;
            (
                open_direct(app, &me.token, &partner.username).await,
                partner,
            )
        } else {
            let first = &friends[i % friends.len()];
            let second = &friends[(i + 1) % friends.len()];
            let members: Vec<&str> = if i % 2 == 0 {
                vec![&first.username, &second.username]
            } else {
                vec![&first.username]
            };
            let chat = create_group(app, &me.token, &format!("group {i}"), &members).await;
            (chat, first.clone())
        };
        send(app, &writer.token, &chat, &format!("hello {i}")).await;
        send(app, &me.token, &chat, &format!("answer {i}")).await;
        send(app, &writer.token, &chat, &format!("unread {i}")).await;
    }
}

#[tokio::test]
async fn the_chat_list_does_not_query_per_chat() {
    // Fifty chats written in a few seconds: more messages than one person's burst.
    // Fifty chats, most of them groups with members, in a few seconds: above a person's pace.
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.send_burst = 1000;
        c.limits.invites_burst = 1000;
        quiet_background(c);
    })
    .await;
    let me = app.register("lister").await;
    let mut friends = Vec::new();
    for name in ["friend_a", "friend_b", "friend_c", "friend_d"] {
        friends.push(app.register(name).await);
    }
    add_chats(&app, &me, &friends, 0..5).await;
    let five = statements_for_list(&app, &me, 5).await;
    add_chats(&app, &me, &friends, 5..50).await;
    let fifty = statements_for_list(&app, &me, 50).await;
    eprintln!("chat list SQL statements: {five} for 5 chats, {fifty} for 50 chats");
    assert!(five > 0, "the counter counts");
    assert_eq!(
        five, fifty,
        "the chat list must not run statements per chat ({five} for 5 chats, {fifty} for 50)"
    );
}
