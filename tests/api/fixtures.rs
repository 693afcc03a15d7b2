//! Builders shared by the chat tests: chats, rooms and messages through the real API, plus small
//! readers for the JSON that comes back.
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, error_code, error_field};

/// Creates a group owned by `token`'s user with `members` (usernames, emails or ids); its id.
pub async fn create_group(app: &TestApp, token: &str, name: &str, members: &[&str]) -> String {
    let data = app
        .gql_ok(
            Some(token),
            "mutation($name: String!, $members: [String!]!) { createGroup(input: {name: $name, members: $members}) { id } }",
            json!({ "name": name, "members": members }),
        )
        .await;
    id(&data["createGroup"])
}

/// Creates a room owned by `token`'s user; its id.
pub async fn create_room(app: &TestApp, token: &str, name: &str, private: bool) -> String {
    let query = format!(
        "mutation($name: String!) {{ createRoom(input: {{name: $name, isPrivate: {private}}}) {{ id }} }}"
    );
    let data = app
        .gql_ok(Some(token), &query, json!({ "name": name }))
        .await;
    id(&data["createRoom"])
}

/// Opens (or finds) the direct chat with `identifier`; its id.
pub async fn open_direct(app: &TestApp, token: &str, identifier: &str) -> String {
    let data = app
        .gql_ok(
            Some(token),
            "mutation($identifier: String!) { openDirectChat(identifier: $identifier) { id } }",
            json!({ "identifier": identifier }),
        )
        .await;
    id(&data["openDirectChat"])
}

/// Posts `content` in `chat_id`; the message id.
pub async fn send(app: &TestApp, token: &str, chat_id: &str, content: &str) -> String {
    let data = app
        .gql_ok(
            Some(token),
            "mutation($chatId: ID!, $content: String!) { sendMessage(input: {chatId: $chatId, content: $content}) { id } }",
            json!({ "chatId": chat_id, "content": content }),
        )
        .await;
    id(&data["sendMessage"])
}

/// Posts `{prefix}0` … `{prefix}{n-1}` in order; their ids.
pub async fn send_many(
    app: &TestApp,
    token: &str,
    chat_id: &str,
    prefix: &str,
    n: usize,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        ids.push(send(app, token, chat_id, &format!("{prefix}{i}")).await);
    }
    ids
}

/// Joins a room (public, or private after an invite).
pub async fn join_room(app: &TestApp, token: &str, room_id: &str) {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!) { joinRoom(roomId: $id) { id } }",
        json!({ "id": room_id }),
    )
    .await;
}

/// Invites `identifiers` to a room as `token`'s user.
pub async fn invite(app: &TestApp, token: &str, room_id: &str, identifiers: &[&str]) {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $who: [String!]!) { inviteToRoom(roomId: $id, identifiers: $who) }",
        json!({ "id": room_id, "who": identifiers }),
    )
    .await;
}

/// Adds `identifiers` to a chat as `token`'s user.
pub async fn add_members(app: &TestApp, token: &str, chat_id: &str, identifiers: &[&str]) {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $who: [String!]!) { addMembers(chatId: $id, identifiers: $who) }",
        json!({ "id": chat_id, "who": identifiers }),
    )
    .await;
}

/// Makes `user_id` an admin of `chat_id`.
pub async fn promote(app: &TestApp, token: &str, chat_id: &str, user_id: &str) {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $user: ID!) { promoteAdmin(chatId: $id, userId: $user) }",
        json!({ "id": chat_id, "user": user_id }),
    )
    .await;
}

/// Deletes a message as `token`'s user.
pub async fn delete(app: &TestApp, token: &str, message_id: &str) {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!) { deleteMessage(id: $id) { id } }",
        json!({ "id": message_id }),
    )
    .await;
}

/// Registers `name` and makes it staff.
pub async fn register_staff(app: &TestApp, name: &str) -> TestUser {
    let user = app.register(name).await;
    goftgu::domain::accounts::set_staff(&app.state, name, true)
        .await
        .unwrap();
    user
}

/// `chat(id) { <selection> }` as `token`'s user; the chat object.
pub async fn chat(app: &TestApp, token: &str, chat_id: &str, selection: &str) -> Value {
    let query = format!("query($id: ID!) {{ chat(id: $id) {{ {selection} }} }}");
    app.gql_ok(Some(token), &query, json!({ "id": chat_id }))
        .await["chat"]
        .clone()
}

/// `unreadCount` of a chat as `token`'s user.
pub async fn unread(app: &TestApp, token: &str, chat_id: &str) -> i64 {
    chat(app, token, chat_id, "unreadCount").await["unreadCount"]
        .as_i64()
        .unwrap()
}

/// `totalCount` of a chat's messages as `token`'s user.
pub async fn total_messages(app: &TestApp, token: &str, chat_id: &str) -> i64 {
    app.gql_ok(
        Some(token),
        "query($id: ID!) { messages(chatId: $id, first: 1) { totalCount } }",
        json!({ "id": chat_id }),
    )
    .await["messages"]["totalCount"]
        .as_i64()
        .unwrap()
}

/// The ids of my chats, newest activity first (`archived` picks the list).
pub async fn my_chat_ids(app: &TestApp, token: &str, archived: bool) -> Vec<String> {
    let query = format!("{{ chats(archived: {archived}, first: 50) {{ nodes {{ id }} }} }}");
    strings(
        &app.gql_ok(Some(token), &query, json!({})).await["chats"]["nodes"],
        "id",
    )
}

/// (username, role) of every member in `chat.members`, sorted by username.
pub fn member_roles(chat: &Value) -> Vec<(String, String)> {
    let nodes = &chat["members"]["nodes"];
    let mut pairs: Vec<_> = strings(nodes, "user/username")
        .into_iter()
        .zip(strings(nodes, "role"))
        .collect();
    pairs.sort();
    pairs
}

/// Owned copies of (username, role) pairs, to compare with `member_roles`.
pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The `id` string of an object.
pub fn id(object: &Value) -> String {
    object["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {object}"))
        .to_string()
}

/// `key` of every element of a JSON array (nested keys with `/`, as a JSON pointer); null → "".
pub fn strings(array: &Value, key: &str) -> Vec<String> {
    let pointer = format!("/{key}");
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(|item| {
            item.pointer(&pointer)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Asserts a resolver refused the input with BAD_USER_INPUT naming `field` (a parse or
/// validation failure of the query itself has no `path`, so a typo here cannot pass).
pub fn assert_bad_input(response: &Value, field: Option<&str>) {
    assert_eq!(error_code(response), "BAD_USER_INPUT", "{response}");
    assert!(
        response["errors"][0]["path"].is_array(),
        "refused by a resolver, not by query validation: {response}"
    );
    if field.is_some() {
        assert_eq!(error_field(response), field, "{response}");
    }
}

/// A pause long enough for the next write to get a later timestamp than the last one.
pub async fn tick() {
    tokio::time::sleep(Duration::from_millis(15)).await;
}
