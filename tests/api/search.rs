//! searchMessages: only chats the caller is a member of, any case, LIKE wildcards taken
//! literally, newest first, the chatId filter, deleted messages left out.
use serde_json::json;

use crate::fixtures::{
    assert_bad_input, create_group, create_room, delete, register_staff, send, strings,
};
use crate::helpers::{TestApp, spawn_app};

const SEARCH: &str = "query($q: String!, $chat: ID) { searchMessages(query: $q, chatId: $chat) { nodes { content } totalCount } }";

/// Contents found by `token`'s user, newest first.
async fn found(app: &TestApp, token: &str, query: &str, chat_id: Option<&str>) -> Vec<String> {
    let data = app
        .gql_ok(Some(token), SEARCH, json!({ "q": query, "chat": chat_id }))
        .await;
    strings(&data["searchMessages"]["nodes"], "content")
}

#[tokio::test]
async fn search_finds_only_my_chats_literally_and_in_any_case() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let staff = register_staff(&app, "root").await;
    let mine = create_group(&app, &ana.token, "Mine", &["ben"]).await;
    let theirs = create_group(&app, &cyrus.token, "Theirs", &["ben"]).await;
    let public = create_room(&app, &cyrus.token, "Open", false).await;
    let hello = send(&app, &ana.token, &mine, "Hello World").await;
    send(&app, &ben.token, &mine, "100% sure").await;
    send(&app, &ana.token, &mine, "snake_case name").await;
    send(&app, &ben.token, &mine, "plain words").await;
    send(&app, &cyrus.token, &theirs, "hello from elsewhere").await;
    send(&app, &cyrus.token, &public, "hello in public").await;

    assert_eq!(
        found(&app, &ana.token, "hello", None).await,
        ["Hello World"],
        "not from chats ana is not in, not even a readable public room"
    );
    assert_eq!(
        found(&app, &ana.token, "WORLD", None).await,
        ["Hello World"]
    );
    assert_eq!(found(&app, &ana.token, "%", None).await, ["100% sure"]);
    assert_eq!(
        found(&app, &ana.token, "_", None).await,
        ["snake_case name"]
    );
    assert!(found(&app, &ana.token, "elsewhere", None).await.is_empty());
    assert!(
        found(&app, &staff.token, "hello", None).await.is_empty(),
        "staff search only their own chats"
    );

    assert_eq!(
        found(&app, &ben.token, "hello", None).await,
        ["hello from elsewhere", "Hello World"],
        "newest first"
    );
    assert_eq!(
        found(&app, &ben.token, "hello", Some(&mine)).await,
        ["Hello World"]
    );
    assert_eq!(
        found(&app, &ben.token, "hello", Some(&theirs)).await,
        ["hello from elsewhere"]
    );

    delete(&app, &ana.token, &hello).await;
    assert!(
        found(&app, &ana.token, "hello", None).await.is_empty(),
        "deleted messages are not found"
    );
    let empty = app.gql(Some(&ana.token), SEARCH, json!({ "q": "" })).await;
    assert_bad_input(&empty, None);
}
