//! Mentions and replies: `@username` resolves to members of the chat (not inside code, words or
//! addresses; unknown and non-member names are plain text), `@all` only from an admin of a group
//! or room; mentioned members and the author of the message replied to are notified (unless they
//! muted the chat, chose mentions only, or blocked the sender); unread mentions are counted per
//! chat and in the chat list; an edit notifies only members it newly mentions.
use serde_json::{Value, json};

use crate::fixtures::{chat, create_group, open_direct, pairs, send, strings};
use crate::helpers::{TestApp, error_code, spawn_app};

const MENTIONS: &str = "query($id: ID!) { message(id: $id) {
    mentionsEveryone mentions { username } } }";

async fn mentions_of(app: &TestApp, token: &str, message_id: &str) -> (Vec<String>, bool) {
    let data = app
        .gql_ok(Some(token), MENTIONS, json!({ "id": message_id }))
        .await;
    let message = &data["message"];
    (
        strings(&message["mentions"], "username"),
        message["mentionsEveryone"].as_bool().unwrap(),
    )
}

/// `(kind, message id)` of the user's notifications about messages, newest first.
async fn notified(app: &TestApp, token: &str) -> Vec<(String, String)> {
    let data = app
        .gql_ok(
            Some(token),
            "{ notifications(first: 100) { nodes { kind message { id } actor { username } } } }",
            json!({}),
        )
        .await;
    data["notifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "MENTION" || n["kind"] == "REPLY")
        .map(|n| {
            assert_eq!(n["actor"]["username"], "ana", "{n}");
            (
                n["kind"].as_str().unwrap().to_string(),
                n["message"]["id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn unread_mentions(app: &TestApp, token: &str, chat_id: &str) -> (i64, i64) {
    let chat = chat(app, token, chat_id, "unreadCount unreadMentionCount").await;
    (
        chat["unreadCount"].as_i64().unwrap(),
        chat["unreadMentionCount"].as_i64().unwrap(),
    )
}

async fn reply(app: &TestApp, token: &str, chat_id: &str, to: &str, content: &str) -> String {
    let data = app
        .gql_ok(
            Some(token),
            "mutation($c: ID!, $r: ID!, $t: String!) {
               sendMessage(input: {chatId: $c, replyToId: $r, content: $t}) { id } }",
            json!({ "c": chat_id, "r": to, "t": content }),
        )
        .await;
    data["sendMessage"]["id"].as_str().unwrap().to_string()
}

async fn edit(app: &TestApp, token: &str, id: &str, content: &str) -> Value {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $t: String!) { editMessage(id: $id, content: $t) { id content } }",
        json!({ "id": id, "t": content }),
    )
    .await
}

#[tokio::test]
async fn mentions_resolve_to_members_notify_them_and_count_as_unread_mentions() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("Ben").await;
    let cyd = app.register("cyd").await;
    let dan = app.register("dan").await;
    let group = create_group(&app, &ana.token, "club", &["Ben", "cyd"]).await;

    let text = "hi @ben, @CYD! not @dan (no member), @nobody, ana@example.com, `@ben` or @ana";
    let message = send(&app, &ana.token, &group, text).await;
    assert_eq!(
        mentions_of(&app, &cyd.token, &message).await,
        (vec!["Ben".to_string(), "cyd".to_string()], false)
    );
    for user in [&ben, &cyd] {
        assert_eq!(
            notified(&app, &user.token).await,
            pairs(&[("MENTION", &message)])
        );
        assert_eq!(unread_mentions(&app, &user.token, &group).await, (1, 1));
    }
    assert!(notified(&app, &dan.token).await.is_empty());
    assert!(notified(&app, &ana.token).await.is_empty(), "not oneself");

    // A plain message counts unread, not as a mention; the chat list says the same.
    send(&app, &ana.token, &group, "no names here").await;
    let list = app
        .gql_ok(
            Some(&ben.token),
            "{ chats(first: 10) { nodes { id unreadCount unreadMentionCount } } }",
            json!({}),
        )
        .await;
    let node = &list["chats"]["nodes"][0];
    assert_eq!(node["id"], group.as_str());
    assert_eq!(
        (&node["unreadCount"], &node["unreadMentionCount"]),
        (&json!(2), &json!(1))
    );

    // Reading the chat clears both; a deleted mention stops counting.
    app.gql_ok(
        Some(&ben.token),
        "mutation($id: ID!) { markChatRead(chatId: $id) }",
        json!({ "id": group }),
    )
    .await;
    assert_eq!(unread_mentions(&app, &ben.token, &group).await, (0, 0));
    let again = send(&app, &ana.token, &group, "@ben once more").await;
    assert_eq!(unread_mentions(&app, &ben.token, &group).await, (1, 1));
    app.gql_ok(
        Some(&ana.token),
        "mutation($id: ID!) { deleteMessage(id: $id) { id } }",
        json!({ "id": again }),
    )
    .await;
    assert_eq!(unread_mentions(&app, &ben.token, &group).await, (0, 0));
    assert_eq!(mentions_of(&app, &ben.token, &again).await, (vec![], false));
}

#[tokio::test]
async fn all_mentions_every_member_only_from_an_admin_of_a_group_or_room() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "club", &["ben", "cyd"]).await;

    // A plain member's @all is text.
    let from_member = send(&app, &ben.token, &group, "@all lunch?").await;
    assert_eq!(
        mentions_of(&app, &ana.token, &from_member).await,
        (vec![], false)
    );
    assert!(notified(&app, &cyd.token).await.is_empty());

    let from_owner = send(&app, &ana.token, &group, "@all and especially @cyd: lunch!").await;
    assert_eq!(
        mentions_of(&app, &ben.token, &from_owner).await,
        (vec!["cyd".to_string()], true)
    );
    for user in [&ben, &cyd] {
        assert_eq!(
            notified(&app, &user.token).await,
            pairs(&[("MENTION", &from_owner)]),
            "one notification each, named or not"
        );
        assert_eq!(unread_mentions(&app, &user.token, &group).await.1, 1);
    }

    // A direct chat has no admins: @all there is text too.
    let direct = open_direct(&app, &ana.token, "ben").await;
    let in_direct = send(&app, &ana.token, &direct, "@all hello").await;
    assert_eq!(
        mentions_of(&app, &ben.token, &in_direct).await,
        (vec![], false)
    );
    assert_eq!(notified(&app, &ben.token).await.len(), 1);
}

#[tokio::test]
async fn an_edit_notifies_only_members_it_newly_mentions() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "club", &["ben", "cyd"]).await;
    let message = send(&app, &ana.token, &group, "hello").await;
    assert!(notified(&app, &ben.token).await.is_empty());

    edit(&app, &ana.token, &message, "hello @ben").await;
    assert_eq!(
        notified(&app, &ben.token).await,
        pairs(&[("MENTION", &message)])
    );
    assert_eq!(unread_mentions(&app, &ben.token, &group).await, (1, 1));

    // Removed: no longer counted, and nothing new is sent.
    edit(&app, &ana.token, &message, "hello").await;
    assert_eq!(
        mentions_of(&app, &ben.token, &message).await,
        (vec![], false)
    );
    assert_eq!(unread_mentions(&app, &ben.token, &group).await, (1, 0));

    // Put back with someone new: only the new one is notified.
    edit(&app, &ana.token, &message, "hello @ben and @cyd").await;
    assert_eq!(
        mentions_of(&app, &ben.token, &message).await,
        (vec!["ben".to_string(), "cyd".to_string()], false)
    );
    assert_eq!(notified(&app, &ben.token).await.len(), 1, "not twice");
    assert_eq!(
        notified(&app, &cyd.token).await,
        pairs(&[("MENTION", &message)])
    );
    assert_eq!(unread_mentions(&app, &ben.token, &group).await, (1, 1));
}

#[tokio::test]
async fn replies_notify_their_author_as_the_chat_settings_allow() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "club", &["ben"]).await;
    let bens = send(&app, &ben.token, &group, "my point").await;

    let first = reply(&app, &ana.token, &group, &bens, "agreed").await;
    assert_eq!(
        notified(&app, &ben.token).await,
        pairs(&[("REPLY", &first)])
    );
    // A reply that also names the author is one mention, not two notifications.
    let both = reply(&app, &ana.token, &group, &bens, "right, @ben").await;
    assert_eq!(
        notified(&app, &ben.token).await,
        pairs(&[("MENTION", &both), ("REPLY", &first)])
    );
    // Replying to oneself notifies nobody.
    let anas = send(&app, &ana.token, &group, "mine").await;
    reply(&app, &ana.token, &group, &anas, "still mine").await;
    assert!(notified(&app, &ana.token).await.is_empty());

    // Mentions only: replies stop notifying, mentions do not.
    let level = app
        .gql_ok(
            Some(&ben.token),
            "mutation($c: ID!) { setChatNotificationLevel(chatId: $c, level: MENTIONS_ONLY) {
               notificationLevel } }",
            json!({ "c": group }),
        )
        .await;
    assert_eq!(
        level["setChatNotificationLevel"]["notificationLevel"],
        "MENTIONS_ONLY"
    );
    reply(&app, &ana.token, &group, &bens, "quiet reply").await;
    let mention = send(&app, &ana.token, &group, "@ben look").await;
    let seen = notified(&app, &ben.token).await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0], ("MENTION".to_string(), mention));
    // Ana's level is her own.
    let anas_level = chat(&app, &ana.token, &group, "notificationLevel").await;
    assert_eq!(anas_level["notificationLevel"], "ALL");
}

#[tokio::test]
async fn a_muted_chat_counts_mentions_but_notifies_nobody_until_unmuted() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let eve = app.register("eve").await;
    let group = create_group(&app, &ana.token, "club", &["ben"]).await;
    const SETTINGS: &str = "notificationsMuted notificationsMutedUntil notificationLevel";

    let muted = app
        .gql_ok(
            Some(&ben.token),
            &format!("mutation($c: ID!) {{ muteChat(chatId: $c) {{ {SETTINGS} }} }}"),
            json!({ "c": group }),
        )
        .await;
    assert_eq!(
        muted["muteChat"],
        json!({ "notificationsMuted": true, "notificationsMutedUntil": null, "notificationLevel": "ALL" })
    );
    send(&app, &ana.token, &group, "@ben hello?").await;
    assert!(notified(&app, &ben.token).await.is_empty());
    assert_eq!(unread_mentions(&app, &ben.token, &group).await, (1, 1));

    let unmuted = app
        .gql_ok(
            Some(&ben.token),
            &format!("mutation($c: ID!) {{ unmuteChat(chatId: $c) {{ {SETTINGS} }} }}"),
            json!({ "c": group }),
        )
        .await;
    assert_eq!(unmuted["unmuteChat"]["notificationsMuted"], false);
    let heard = send(&app, &ana.token, &group, "@ben now?").await;
    assert_eq!(
        notified(&app, &ben.token).await,
        pairs(&[("MENTION", &heard)])
    );

    // For a while: the time is kept; in the past, or for a non-member, is refused.
    let until = (chrono::Utc::now() + chrono::Duration::hours(8)).to_rfc3339();
    let timed = app
        .gql_ok(
            Some(&ben.token),
            &format!("mutation($c: ID!, $u: DateTime) {{ muteChat(chatId: $c, until: $u) {{ {SETTINGS} }} }}"),
            json!({ "c": group, "u": until }),
        )
        .await;
    assert_eq!(timed["muteChat"]["notificationsMuted"], true);
    let kept = chrono::DateTime::parse_from_rfc3339(
        timed["muteChat"]["notificationsMutedUntil"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let asked = chrono::DateTime::parse_from_rfc3339(&until).unwrap();
    assert!(
        (kept - asked).num_milliseconds().abs() < 1,
        "{kept} {asked}"
    );
    send(&app, &ana.token, &group, "@ben still there?").await;
    assert_eq!(notified(&app, &ben.token).await.len(), 1);

    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let refused = app
        .gql(
            Some(&ben.token),
            "mutation($c: ID!, $u: DateTime) { muteChat(chatId: $c, until: $u) { id } }",
            json!({ "c": group, "u": past }),
        )
        .await;
    assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    let stranger = app
        .gql(
            Some(&eve.token),
            "mutation($c: ID!) { muteChat(chatId: $c) { id } }",
            json!({ "c": group }),
        )
        .await;
    assert_eq!(error_code(&stranger), "NOT_FOUND", "{stranger}");
}

#[tokio::test]
async fn someone_blocked_cannot_reach_the_blocker_by_mention_or_reply() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "club", &["ben", "cyd"]).await;
    let bens = send(&app, &ben.token, &group, "hello all").await;
    app.gql_ok(
        Some(&ben.token),
        "mutation($id: ID!) { blockUser(userId: $id) }",
        json!({ "id": ana.id }),
    )
    .await;

    let mention = send(&app, &ana.token, &group, "@ben @cyd hi").await;
    reply(&app, &ana.token, &group, &bens, "hi ben").await;
    assert!(notified(&app, &ben.token).await.is_empty());
    assert_eq!(unread_mentions(&app, &ben.token, &group).await.1, 0);
    assert_eq!(
        mentions_of(&app, &cyd.token, &mention).await,
        (vec!["cyd".to_string()], false)
    );
    assert_eq!(
        notified(&app, &cyd.token).await,
        pairs(&[("MENTION", &mention)])
    );
}
