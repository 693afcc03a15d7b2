//! Messages end to end: paging (cursors both ways, the default page, offsets, cursors across
//! deletes, argument checks), the sending rules and reply previews.
use serde_json::{Value, json};

use crate::fixtures::{
    assert_bad_input, create_group, delete, send, send_many, strings, total_messages,
};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const PAGE: &str = "query($chat: ID!, $first: Int, $after: String, $last: Int, $before: String, $limit: Int, $skip: Int) { messages(chatId: $chat, first: $first, after: $after, last: $last, before: $before, limit: $limit, skip: $skip) { nodes { id content isDeleted } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount hasMore } }";

/// The whole response of `messages(chatId, …args)`.
async fn page_response(app: &TestApp, token: &str, chat_id: &str, args: Value) -> Value {
    let mut vars = args;
    vars["chat"] = json!(chat_id);
    app.gql(Some(token), PAGE, vars).await
}

/// The `messages` connection; panics on errors.
async fn page(app: &TestApp, token: &str, chat_id: &str, args: Value) -> Value {
    let response = page_response(app, token, chat_id, args.clone()).await;
    assert!(response.get("errors").is_none(), "{args}: {response}");
    response["data"]["messages"].clone()
}

fn contents(connection: &Value) -> Vec<String> {
    strings(&connection["nodes"], "content")
}

/// "{prefix}{i}" for each i in `range`.
fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn an_empty_chat_has_empty_pages() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    app.register("ben").await;
    let group = create_group(&app, &ana.token, "Quiet", &["ben"]).await;
    for args in [
        json!({}),
        json!({ "first": 5 }),
        json!({ "last": 5 }),
        json!({ "limit": 5, "skip": 0 }),
    ] {
        let connection = page(&app, &ana.token, &group, args.clone()).await;
        assert_eq!(connection["nodes"], json!([]), "{args}");
        assert_eq!(connection["totalCount"], 0, "{args}");
        assert_eq!(connection["hasMore"], false, "{args}");
        assert_eq!(connection["pageInfo"]["hasNextPage"], false, "{args}");
        assert_eq!(connection["pageInfo"]["hasPreviousPage"], false, "{args}");
    }
}

#[tokio::test]
async fn forward_paging_ends_exactly_at_the_page_boundary() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Ten", &[]).await;
    send_many(&app, &ana.token, &group, "m", 10).await;
    let first = page(&app, &ana.token, &group, json!({ "first": 5 })).await;
    assert_eq!(contents(&first), names("m", 0..5));
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    assert_eq!(first["hasMore"], true);
    assert_eq!(first["totalCount"], 10);
    let second = page(
        &app,
        &ana.token,
        &group,
        json!({ "first": 5, "after": first["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(contents(&second), names("m", 5..10));
    assert_eq!(
        second["pageInfo"]["hasNextPage"], false,
        "exactly at the end: {second}"
    );
    assert_eq!(second["hasMore"], false);
    assert_eq!(second["totalCount"], 10);
    let beyond = page(
        &app,
        &ana.token,
        &group,
        json!({ "first": 5, "after": second["pageInfo"]["endCursor"] }),
    )
    .await;
    assert_eq!(beyond["nodes"], json!([]));
    assert_eq!(beyond["pageInfo"]["hasNextPage"], false);
}

#[tokio::test]
async fn backward_paging_is_oldest_to_newest_within_a_page() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Seven", &[]).await;
    send_many(&app, &ana.token, &group, "m", 7).await;
    let newest = page(&app, &ana.token, &group, json!({ "last": 3 })).await;
    assert_eq!(contents(&newest), names("m", 4..7));
    assert_eq!(newest["pageInfo"]["hasPreviousPage"], true);
    assert_eq!(newest["hasMore"], true);
    let middle = page(
        &app,
        &ana.token,
        &group,
        json!({ "last": 3, "before": newest["pageInfo"]["startCursor"] }),
    )
    .await;
    assert_eq!(contents(&middle), names("m", 1..4));
    assert_eq!(middle["hasMore"], true);
    let oldest = page(
        &app,
        &ana.token,
        &group,
        json!({ "last": 3, "before": middle["pageInfo"]["startCursor"] }),
    )
    .await;
    assert_eq!(contents(&oldest), ["m0"]);
    assert_eq!(oldest["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(oldest["hasMore"], false);
}

#[tokio::test]
async fn no_arguments_give_the_newest_fifty_in_order() {
    // 55 messages back to back: more than one person's burst.
    let (app, _dir) = spawn_app_with(|c| c.limits.send_burst = 100).await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Busy", &[]).await;
    send_many(&app, &ana.token, &group, "m", 55).await;
    let default = page(&app, &ana.token, &group, json!({})).await;
    assert_eq!(contents(&default), names("m", 5..55));
    assert_eq!(default["hasMore"], true, "older messages exist");
    assert_eq!(default["totalCount"], 55);
    let nested = app
        .gql_ok(
            Some(&ana.token),
            "query($id: ID!) { chat(id: $id) { messages { nodes { content } } } }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(
        strings(&nested["chat"]["messages"]["nodes"], "content"),
        names("m", 5..55),
        "Chat.messages pages the same way"
    );
}

#[tokio::test]
async fn offset_paging_counts_from_the_newest() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Ten", &[]).await;
    send_many(&app, &ana.token, &group, "m", 10).await;
    for (skip, expected, more) in [
        (0, names("m", 7..10), true),
        (3, names("m", 4..7), true),
        (7, names("m", 0..3), false),
        (9, names("m", 0..1), false),
        (10, vec![], false),
    ] {
        let connection = page(
            &app,
            &ana.token,
            &group,
            json!({ "limit": 3, "skip": skip }),
        )
        .await;
        assert_eq!(contents(&connection), expected, "skip {skip}");
        assert_eq!(connection["hasMore"], more, "skip {skip}");
        assert_eq!(connection["totalCount"], 10);
    }
}

#[tokio::test]
async fn cursors_survive_deletes_which_stay_as_placeholders() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Six", &[]).await;
    let ids = send_many(&app, &ana.token, &group, "m", 6).await;
    let first = page(&app, &ana.token, &group, json!({ "first": 3 })).await;
    assert_eq!(contents(&first), names("m", 0..3));
    let cursor = first["pageInfo"]["endCursor"].clone();
    // The cursor's own message and the next one go.
    delete(&app, &ana.token, &ids[2]).await;
    delete(&app, &ana.token, &ids[3]).await;
    let next = page(
        &app,
        &ana.token,
        &group,
        json!({ "first": 3, "after": cursor }),
    )
    .await;
    assert_eq!(
        next["nodes"],
        json!([
            { "id": ids[3], "content": null, "isDeleted": true },
            { "id": ids[4], "content": "m4", "isDeleted": false },
            { "id": ids[5], "content": "m5", "isDeleted": false },
        ])
    );
    assert_eq!(next["totalCount"], 6, "deleted messages still count");
    let back = page(
        &app,
        &ana.token,
        &group,
        json!({ "last": 5, "before": cursor }),
    )
    .await;
    assert_eq!(contents(&back), names("m", 0..2));
    let all = page(&app, &ana.token, &group, json!({})).await;
    assert_eq!(strings(&all["nodes"], "id"), ids);
}

#[tokio::test]
async fn paging_arguments_are_validated() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Few", &[]).await;
    send_many(&app, &ana.token, &group, "m", 2).await;
    for (args, field) in [
        (json!({ "first": 0 }), Some("first")),
        (json!({ "first": 101 }), Some("first")),
        (json!({ "first": -1 }), Some("first")),
        (json!({ "last": 0 }), Some("last")),
        (json!({ "last": 101 }), Some("last")),
        (json!({ "after": "not a cursor" }), Some("after")),
        (json!({ "before": "not a cursor" }), Some("before")),
        (json!({ "first": 1, "last": 1 }), None),
    ] {
        let response = page_response(&app, &ana.token, &group, args.clone()).await;
        assert!(
            response["data"].is_null() || response["data"]["messages"].is_null(),
            "{args}: {response}"
        );
        assert_bad_input(&response, field);
    }
    for args in [json!({ "first": 100 }), json!({ "last": 1 })] {
        assert_eq!(page(&app, &ana.token, &group, args).await["totalCount"], 2);
    }
}

const SEND: &str = "mutation($chat: ID!, $content: String!, $reply: ID) { sendMessage(input: {chatId: $chat, content: $content, replyToId: $reply}) { id content replyToId replyTo { id content isDeleted sender { username } } } }";

#[tokio::test]
async fn send_message_checks_content_and_reply() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Here", &[]).await;
    let elsewhere = create_group(&app, &ana.token, "There", &[]).await;
    let foreign = send(&app, &ana.token, &elsewhere, "in the other chat").await;
    let too_long = "x".repeat(4001);
    for (content, reply, field) in [
        ("", None, "content"),
        ("  \n\t ", None, "content"),
        (too_long.as_str(), None, "content"),
        ("fine", Some(foreign.as_str()), "replyToId"),
    ] {
        let response = app
            .gql(
                Some(&ana.token),
                SEND,
                json!({ "chat": group, "content": content, "reply": reply }),
            )
            .await;
        assert_bad_input(&response, Some(field));
    }
    assert_eq!(
        total_messages(&app, &ana.token, &group).await,
        0,
        "nothing was sent"
    );

    for content in ["x".repeat(4000), "ب".repeat(4000)] {
        let sent = app
            .gql_ok(
                Some(&ana.token),
                SEND,
                json!({ "chat": group, "content": content }),
            )
            .await;
        assert_eq!(
            sent["sendMessage"]["content"],
            content.as_str(),
            "4000 characters fit"
        );
    }
    let trimmed = app
        .gql_ok(
            Some(&ana.token),
            SEND,
            json!({ "chat": group, "content": "  padded \n" }),
        )
        .await;
    assert_eq!(trimmed["sendMessage"]["content"], "padded");
    assert!(trimmed["sendMessage"]["replyTo"].is_null());
}

#[tokio::test]
async fn replies_carry_a_preview_of_the_original() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Talk", &["ben"]).await;
    let original = send(&app, &ana.token, &group, "original").await;
    let reply = app
        .gql_ok(
            Some(&ben.token),
            SEND,
            json!({ "chat": group, "content": "answer", "reply": original }),
        )
        .await["sendMessage"]
        .clone();
    assert_eq!(reply["replyToId"], original.as_str());
    assert_eq!(
        reply["replyTo"],
        json!({ "id": original, "content": "original", "isDeleted": false, "sender": { "username": "ana" } })
    );
    delete(&app, &ana.token, &original).await;
    let seen = app
        .gql_ok(
            Some(&ben.token),
            "query($id: ID!) { message(id: $id) { replyTo { id content isDeleted } } }",
            json!({ "id": reply["id"] }),
        )
        .await;
    assert_eq!(
        seen["message"]["replyTo"],
        json!({ "id": original, "content": null, "isDeleted": true }),
        "a deleted original shows as a placeholder"
    );
}
