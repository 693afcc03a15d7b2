//! searchMessages: only chats the caller is a member of, any case, LIKE wildcards taken
//! literally, newest first, the chatId filter, deleted messages left out. messageSearch: every
//! word (the last as a prefix), best match first, escaped snippets, the filters, paging, and
//! edits and deletions shown at once.
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

const RANKED: &str = "query($q: String!, $f: MessageSearchFilter, $first: Int, $after: String) {
    messageSearch(query: $q, filter: $f, first: $first, after: $after) {
      nodes { snippet score message { id content } }
      pageInfo { hasNextPage endCursor } totalCount } }";

async fn ranked(
    app: &TestApp,
    token: &str,
    query: &str,
    filter: serde_json::Value,
) -> serde_json::Value {
    app.gql_ok(
        Some(token),
        RANKED,
        json!({ "q": query, "f": filter, "first": 20 }),
    )
    .await["messageSearch"]
        .clone()
}

fn contents(result: &serde_json::Value) -> Vec<String> {
    result["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["message"]["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn ranked_search_finds_every_word_best_first_with_escaped_snippets() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let eve = app.register("eve").await;
    let group = create_group(&app, &ana.token, "Mine", &["ben"]).await;
    let other = create_group(&app, &eve.token, "Theirs", &[]).await;
    send(
        &app,
        &ana.token,
        &group,
        "a cat and a dog and a bird and a fish and a horse",
    )
    .await;
    send(&app, &ben.token, &group, "Cat cat CAT cat").await;
    send(&app, &ana.token, &group, "<b>cats</b> & \"dogs\"").await;
    send(&app, &ana.token, &group, "سلام دنیا، خوش آمدید").await;
    send(&app, &eve.token, &other, "cat in a chat ana is not in").await;

    // Every word, the last as a prefix; more matches rank higher; only my chats.
    let cats = ranked(&app, &ana.token, "cat", json!(null)).await;
    assert_eq!(
        contents(&cats),
        [
            "Cat cat CAT cat",
            "<b>cats</b> & \"dogs\"",
            "a cat and a dog and a bird and a fish and a horse"
        ]
    );
    assert_eq!(cats["totalCount"], 3);
    let scores: Vec<f64> = cats["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] > scores[2], "{scores:?}");
    assert_eq!(
        contents(&ranked(&app, &ana.token, "cat dog", json!(null)).await),
        ["a cat and a dog and a bird and a fish and a horse"]
    );
    assert_eq!(
        contents(&ranked(&app, &ben.token, "دنیا", json!(null)).await),
        ["سلام دنیا، خوش آمدید"]
    );
    // The snippet is HTML: the text escaped, the matches marked.
    let html = ranked(&app, &ana.token, "cats", json!(null)).await;
    let snippet = html["nodes"][0]["snippet"].as_str().unwrap();
    assert!(snippet.contains("<mark>cats</mark>"), "{snippet}");
    // SQLite keeps the tag as text (escaped); PostgreSQL's parser drops it. Neither passes
    // markup through.
    assert!(snippet.contains("&amp;"), "{snippet}");
    assert!(!snippet.contains("<b>"), "{snippet}");

    let refused = app
        .gql(
            Some(&ana.token),
            RANKED,
            json!({ "q": "!!! ***", "first": 20 }),
        )
        .await;
    assert_bad_input(&refused, Some("query"));
    let not_mine = app
        .gql(
            Some(&ana.token),
            RANKED,
            json!({ "q": "cat", "f": { "chatId": other }, "first": 20 }),
        )
        .await;
    assert_eq!(
        crate::helpers::error_code(&not_mine),
        "NOT_FOUND",
        "{not_mine}"
    );
}

#[tokio::test]
async fn ranked_search_filters_pages_and_follows_edits_and_deletions_at_once() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Mine", &["ben"]).await;
    let second = create_group(&app, &ana.token, "Second", &["ben"]).await;
    let before = send(&app, &ana.token, &group, "report one").await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    send(&app, &ben.token, &group, "report two").await;
    send(&app, &ana.token, &second, "report three").await;
    let file = crate::files::upload(
        &app,
        &ana.token,
        "r.png",
        "image/png",
        crate::file_bytes::png(600),
    )
    .await;
    app.gql_ok(
        Some(&ana.token),
        "mutation($c: ID!, $ids: [ID!]) { sendMessage(input: {chatId: $c, content: \"report four\", attachmentIds: $ids}) { id } }",
        json!({ "c": group, "ids": [file["id"]] }),
    )
    .await;

    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let search = |filter: serde_json::Value| {
        let app = &app;
        let token = ana.token.clone();
        async move { sorted(contents(&ranked(app, &token, "report", filter).await)) }
    };
    assert_eq!(search(json!({ "from": ben.id })).await, ["report two"]);
    assert_eq!(search(json!({ "chatId": second })).await, ["report three"]);
    assert_eq!(
        search(json!({ "hasAttachment": true })).await,
        ["report four"]
    );
    assert_eq!(
        search(json!({ "hasAttachment": false, "chatId": group })).await,
        ["report one", "report two"]
    );
    assert_eq!(
        search(json!({ "sentBefore": middle.to_rfc3339() })).await,
        ["report one"]
    );
    assert_eq!(
        search(json!({ "sentAfter": middle.to_rfc3339(), "chatId": group })).await,
        ["report four", "report two"]
    );

    // Pages of two, then the rest.
    let page = app
        .gql_ok(
            Some(&ana.token),
            RANKED,
            json!({ "q": "report", "first": 2 }),
        )
        .await["messageSearch"]
        .clone();
    assert_eq!(page["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let rest = app
        .gql_ok(
            Some(&ana.token),
            RANKED,
            json!({ "q": "report", "first": 2, "after": page["pageInfo"]["endCursor"] }),
        )
        .await["messageSearch"]
        .clone();
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let all: Vec<String> = [contents(&page), contents(&rest)].concat();
    assert_eq!(
        sorted(all),
        ["report four", "report one", "report three", "report two"]
    );

    // An edit and a deletion show at once.
    app.gql_ok(
        Some(&ana.token),
        "mutation($id: ID!) { editMessage(id: $id, content: \"summary one\") { id } }",
        json!({ "id": before }),
    )
    .await;
    assert_eq!(
        contents(&ranked(&app, &ana.token, "summary", json!(null)).await),
        ["summary one"]
    );
    assert_eq!(
        ranked(&app, &ana.token, "report", json!(null)).await["totalCount"],
        3
    );
    delete(&app, &ana.token, &before).await;
    assert_eq!(
        ranked(&app, &ana.token, "summary", json!(null)).await["totalCount"],
        0
    );
}
