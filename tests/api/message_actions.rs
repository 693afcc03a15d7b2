//! What can be done to a message: edit (sender only), delete (sender or admins), reactions and
//! forwarding.
use serde_json::{Value, json};

use crate::fixtures::{
    assert_bad_input, create_group, create_room, delete, open_direct, promote, send, send_many,
    strings, tick, total_messages,
};
use crate::helpers::{error_code, spawn_app};

const EDIT: &str = "mutation($id: ID!, $content: String!) { editMessage(id: $id, content: $content) { id content editedAt } }";

#[tokio::test]
async fn only_the_sender_edits_and_not_after_a_delete() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let group = create_group(&app, &ana.token, "Drafts", &["ben"]).await;
    let message = send(&app, &ana.token, &group, "first draft").await;
    let before = app
        .gql_ok(
            Some(&ana.token),
            "query($id: ID!) { message(id: $id) { editedAt } }",
            json!({ "id": message }),
        )
        .await;
    assert!(before["message"]["editedAt"].is_null(), "{before}");

    let edited = app
        .gql_ok(
            Some(&ana.token),
            EDIT,
            json!({ "id": message, "content": " second draft " }),
        )
        .await["editMessage"]
        .clone();
    assert_eq!(edited["content"], "second draft");
    assert!(edited["editedAt"].is_string(), "editedAt is set: {edited}");
    let by_member = app
        .gql(
            Some(&ben.token),
            EDIT,
            json!({ "id": message, "content": "hijack" }),
        )
        .await;
    assert_eq!(error_code(&by_member), "FORBIDDEN", "{by_member}");
    let by_stranger = app
        .gql(
            Some(&cyrus.token),
            EDIT,
            json!({ "id": message, "content": "hijack" }),
        )
        .await;
    assert_eq!(error_code(&by_stranger), "NOT_FOUND", "{by_stranger}");
    let empty = app
        .gql(
            Some(&ana.token),
            EDIT,
            json!({ "id": message, "content": "  " }),
        )
        .await;
    assert_bad_input(&empty, Some("content"));

    delete(&app, &ana.token, &message).await;
    let after_delete = app
        .gql(
            Some(&ana.token),
            EDIT,
            json!({ "id": message, "content": "back again" }),
        )
        .await;
    assert_bad_input(&after_delete, None);
    let seen = app
        .gql_ok(
            Some(&ben.token),
            "query($id: ID!) { message(id: $id) { content isDeleted } }",
            json!({ "id": message }),
        )
        .await;
    assert_eq!(
        seen["message"],
        json!({ "content": null, "isDeleted": true })
    );
}

#[tokio::test]
async fn the_sender_and_admins_delete_plain_members_cannot() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let dana = app.register("dana").await;
    let group = create_group(&app, &ana.token, "Mods", &["ben", "cyrus", "dana"]).await;
    promote(&app, &ana.token, &group, &ben.id).await;
    let ids = send_many(&app, &cyrus.token, &group, "c", 3).await;
    let query = "mutation($id: ID!) { deleteMessage(id: $id) { id content isDeleted } }";
    let refused = app
        .gql(Some(&dana.token), query, json!({ "id": ids[0] }))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    for (who, message) in [(&cyrus, &ids[0]), (&ben, &ids[1]), (&ana, &ids[2])] {
        let deleted = app
            .gql_ok(Some(&who.token), query, json!({ "id": message }))
            .await;
        assert_eq!(
            deleted["deleteMessage"],
            json!({ "id": message, "content": null, "isDeleted": true }),
            "deleted by {}",
            who.username
        );
    }
    let connection = app
        .gql_ok(
            Some(&dana.token),
            "query($id: ID!) { messages(chatId: $id) { nodes { content isDeleted } totalCount } }",
            json!({ "id": group }),
        )
        .await["messages"]
        .clone();
    assert_eq!(connection["totalCount"], 3);
    assert!(
        connection["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["isDeleted"] == true && n["content"].is_null()),
        "{connection}"
    );
}

const REACT: &str = "mutation($id: ID!, $emoji: String!) { toggleReaction(messageId: $id, emoji: $emoji) { reactions { emoji count reactedByMe users { username } } } }";

/// (emoji, count, reactedByMe, sorted usernames) of each reaction group, in order.
fn reaction_groups(reactions: &Value) -> Vec<(String, i64, bool, Vec<String>)> {
    reactions
        .as_array()
        .unwrap_or_else(|| panic!("no reactions in {reactions}"))
        .iter()
        .map(|group| {
            let mut users = strings(&group["users"], "username");
            users.sort();
            (
                group["emoji"].as_str().unwrap().to_string(),
                group["count"].as_i64().unwrap(),
                group["reactedByMe"].as_bool().unwrap(),
                users,
            )
        })
        .collect()
}

fn reaction(
    emoji: &str,
    count: i64,
    mine: bool,
    users: &[&str],
) -> (String, i64, bool, Vec<String>) {
    (
        emoji.into(),
        count,
        mine,
        users.iter().map(|u| u.to_string()).collect(),
    )
}

#[tokio::test]
async fn reactions_group_by_emoji_for_each_viewer() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let dana = app.register("dana").await;
    let group = create_group(&app, &ana.token, "Fun", &["ben", "cyrus"]).await;
    let message = send(&app, &ana.token, &group, "react to me").await;
    let toggle = async |token: &str, emoji: &str| {
        app.gql(Some(token), REACT, json!({ "id": message, "emoji": emoji }))
            .await
    };
    toggle(&ana.token, "👍").await;
    toggle(&ben.token, "👍").await;
    tick().await;
    let as_cyrus = toggle(&cyrus.token, "❤️").await;
    assert_eq!(
        reaction_groups(&as_cyrus["data"]["toggleReaction"]["reactions"]),
        [
            reaction("👍", 2, false, &["ana", "ben"]),
            reaction("❤️", 1, true, &["cyrus"])
        ]
    );
    let seen = app
        .gql_ok(
            Some(&ana.token),
            "query($id: ID!) { message(id: $id) { reactions { emoji count reactedByMe users { username } } } }",
            json!({ "id": message }),
        )
        .await;
    assert_eq!(
        reaction_groups(&seen["message"]["reactions"]),
        [
            reaction("👍", 2, true, &["ana", "ben"]),
            reaction("❤️", 1, false, &["cyrus"])
        ]
    );
    let removed = toggle(&ana.token, "👍").await;
    assert_eq!(
        reaction_groups(&removed["data"]["toggleReaction"]["reactions"]),
        [
            reaction("👍", 1, false, &["ben"]),
            reaction("❤️", 1, false, &["cyrus"])
        ],
        "the same emoji again takes it back"
    );

    for emoji in ["👍🏽", "👨‍👩‍👧"] {
        let response = toggle(&ben.token, emoji).await;
        let groups = reaction_groups(&response["data"]["toggleReaction"]["reactions"]);
        assert!(
            groups.contains(&reaction(emoji, 1, true, &["ben"])),
            "{emoji}: {response}"
        );
    }
    for emoji in ["ab", "👍👍", ""] {
        assert_bad_input(&toggle(&ben.token, emoji).await, Some("emoji"));
    }
    let stranger = toggle(&dana.token, "👍").await;
    assert_eq!(error_code(&stranger), "NOT_FOUND", "{stranger}");
    let after = toggle(&cyrus.token, "🎉").await;
    assert_eq!(
        reaction_groups(&after["data"]["toggleReaction"]["reactions"]).len(),
        5,
        "refused reactions were not stored: {after}"
    );
}

const FORWARD: &str =
    "mutation($id: ID!, $to: [ID!]!) { forwardMessage(messageId: $id, targetChatIds: $to) }";
const NEWEST: &str = "query($chat: ID!) { messages(chatId: $chat, last: 1) { nodes { id content sender { username } forwardedFrom { username } } } }";

#[tokio::test]
async fn forwarding_copies_to_every_target_or_to_none() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let source = create_group(&app, &ana.token, "Source", &["ben"]).await;
    let target = create_group(&app, &ana.token, "Target", &["ben"]).await;
    let direct = open_direct(&app, &ana.token, "ben").await;
    let closed = create_group(&app, &cyrus.token, "Closed", &[]).await;
    let public = create_room(&app, &cyrus.token, "Open", false).await;
    let original = send(&app, &ben.token, &source, "look at this").await;

    let count = app
        .gql_ok(
            Some(&ana.token),
            FORWARD,
            json!({ "id": original, "to": [target, direct] }),
        )
        .await;
    assert_eq!(count["forwardMessage"], 2);
    let copy = app
        .gql_ok(Some(&ben.token), NEWEST, json!({ "chat": target }))
        .await["messages"]["nodes"][0]
        .clone();
    assert_eq!(copy["content"], "look at this");
    assert_eq!(
        copy["sender"]["username"], "ana",
        "the forwarder sends the copy"
    );
    assert_eq!(copy["forwardedFrom"]["username"], "ben", "{copy}");
    // Forwarding the copy still credits the original sender.
    app.gql_ok(
        Some(&ana.token),
        FORWARD,
        json!({ "id": copy["id"], "to": [direct] }),
    )
    .await;
    let again = app
        .gql_ok(Some(&ana.token), NEWEST, json!({ "chat": direct }))
        .await;
    assert_eq!(
        again["messages"]["nodes"][0]["forwardedFrom"]["username"],
        "ben"
    );
    let source_view = app
        .gql_ok(Some(&ana.token), NEWEST, json!({ "chat": source }))
        .await;
    assert!(source_view["messages"]["nodes"][0]["forwardedFrom"].is_null());

    // A target the forwarder cannot post in refuses the whole batch.
    // (A private chat of strangers is NOT_FOUND; a public room one is not in is FORBIDDEN.)
    for (targets, code) in [
        (json!([target, closed]), "NOT_FOUND"),
        (json!([direct, public]), "FORBIDDEN"),
    ] {
        let response = app
            .gql(
                Some(&ana.token),
                FORWARD,
                json!({ "id": original, "to": targets }),
            )
            .await;
        assert_eq!(error_code(&response), code, "{targets}: {response}");
    }
    let outsider = app
        .gql(
            Some(&cyrus.token),
            FORWARD,
            json!({ "id": original, "to": [closed] }),
        )
        .await;
    assert_eq!(error_code(&outsider), "NOT_FOUND", "{outsider}");
    assert_eq!(total_messages(&app, &ana.token, &target).await, 1);
    assert_eq!(total_messages(&app, &ana.token, &direct).await, 2);
    assert_eq!(total_messages(&app, &cyrus.token, &closed).await, 0);
    assert_eq!(total_messages(&app, &cyrus.token, &public).await, 0);
    assert_eq!(total_messages(&app, &ana.token, &source).await, 1);
}
