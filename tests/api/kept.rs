//! Pinned and saved messages: who may pin (admins of groups and rooms, either person in a direct
//! chat), the chat's pinned list (deleted ones drop out) and the live events; saving for oneself,
//! the saved list across chats, paged, showing only what one may still read.
use serde_json::{Value, json};

use crate::fixtures::{create_group, create_room, delete, join_room, open_direct, send, strings};
use crate::helpers::{TestApp, error_code, spawn_app};
use crate::live::{MODERN, Socket};

async fn act(app: &TestApp, token: &str, name: &str, message_id: &str) -> Value {
    let query =
        format!("mutation($id: ID!) {{ {name}(messageId: $id) {{ id isPinned isSaved }} }}");
    app.gql(Some(token), &query, json!({ "id": message_id }))
        .await
}

async fn pinned(app: &TestApp, token: &str, chat_id: &str) -> Vec<String> {
    let chat = crate::fixtures::chat(app, token, chat_id, "pinnedMessages { content }").await;
    strings(&chat["pinnedMessages"], "content")
}

async fn saved_page(app: &TestApp, token: &str, first: i32, after: Option<&str>) -> Value {
    app.gql_ok(
        Some(token),
        "query($first: Int!, $after: String) { savedMessages(first: $first, after: $after) {
           nodes { content isSaved } pageInfo { hasNextPage endCursor } totalCount } }",
        json!({ "first": first, "after": after }),
    )
    .await["savedMessages"]
        .clone()
}

#[tokio::test]
async fn admins_pin_in_groups_either_person_in_direct_chats_and_members_hear_it() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let eve = app.register("eve").await;
    let group = create_group(&app, &ana.token, "club", &["ben"]).await;
    let first = send(&app, &ben.token, &group, "first").await;
    let second = send(&app, &ben.token, &group, "second").await;
    let mut live = Socket::open(&app, &ben.token, MODERN).await;
    let events = "subscription($c: ID!) { chatEvents(chatId: $c) { __typename
        ... on MessagePinned { message { content isPinned } pinnedBy { username } }
        ... on MessageUnpinned { messageId unpinnedBy { username } } } }";
    live.subscribe("c", events, json!({ "c": group })).await;

    let refused = act(&app, &ben.token, "pinMessage", &first).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let outsider = act(&app, &eve.token, "pinMessage", &first).await;
    assert_eq!(error_code(&outsider), "NOT_FOUND", "{outsider}");

    for id in [&first, &second] {
        let answer = act(&app, &ana.token, "pinMessage", id).await;
        assert_eq!(answer["data"]["pinMessage"]["isPinned"], true, "{answer}");
    }
    // Pinning again changes nothing and tells nobody.
    act(&app, &ana.token, "pinMessage", &first).await;
    assert_eq!(pinned(&app, &ben.token, &group).await, ["second", "first"]);
    for content in ["first", "second"] {
        let event = live.event("c").await;
        assert_eq!(event["__typename"], "MessagePinned", "{event}");
        assert_eq!(event["message"]["content"], content);
        assert_eq!(event["message"]["isPinned"], true);
        assert_eq!(event["pinnedBy"]["username"], "ana");
    }
    let answer = act(&app, &ana.token, "unpinMessage", &first).await;
    assert_eq!(
        answer["data"]["unpinMessage"]["isPinned"], false,
        "{answer}"
    );
    let event = live.event("c").await;
    assert_eq!(
        event,
        json!({ "__typename": "MessageUnpinned", "messageId": first, "unpinnedBy": { "username": "ana" } })
    );
    live.expect_quiet().await;
    assert_eq!(pinned(&app, &ben.token, &group).await, ["second"]);

    // A deleted message drops out of the list and cannot be pinned.
    delete(&app, &ben.token, &second).await;
    assert!(pinned(&app, &ana.token, &group).await.is_empty());
    let gone = act(&app, &ana.token, "pinMessage", &second).await;
    assert_eq!(error_code(&gone), "BAD_USER_INPUT", "{gone}");

    // In a direct chat either person pins.
    let direct = open_direct(&app, &ben.token, "ana").await;
    let note = send(&app, &ana.token, &direct, "note").await;
    let answer = act(&app, &ben.token, "pinMessage", &note).await;
    assert_eq!(answer["data"]["pinMessage"]["isPinned"], true, "{answer}");
    assert_eq!(pinned(&app, &ana.token, &direct).await, ["note"]);
    live.close().await;
}

#[tokio::test]
async fn saved_messages_are_private_paged_and_only_while_readable() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let eve = app.register("eve").await;
    let group = create_group(&app, &ana.token, "club", &["ben"]).await;
    let room = create_room(&app, &ana.token, "open", false).await;
    join_room(&app, &ben.token, &room).await;
    let in_group = send(&app, &ana.token, &group, "from the group").await;
    let in_room = send(&app, &ana.token, &room, "from the room").await;
    let third = send(&app, &ana.token, &group, "third").await;

    for id in [&in_group, &in_room, &third] {
        let answer = act(&app, &ben.token, "saveMessage", id).await;
        assert_eq!(answer["data"]["saveMessage"]["isSaved"], true, "{answer}");
    }
    act(&app, &ben.token, "saveMessage", &in_group).await;
    // Private: ana sees it unsaved; eve may not save what she cannot read.
    let anas = app
        .gql_ok(
            Some(&ana.token),
            "query($id: ID!) { message(id: $id) { isSaved } }",
            json!({ "id": in_group }),
        )
        .await;
    assert_eq!(anas["message"]["isSaved"], false);
    let refused = act(&app, &eve.token, "saveMessage", &in_group).await;
    assert_eq!(error_code(&refused), "NOT_FOUND", "{refused}");
    assert_eq!(
        saved_page(&app, &ana.token, 10, None).await["totalCount"],
        0
    );

    // Newest saved first, paged.
    let page = saved_page(&app, &ben.token, 2, None).await;
    assert_eq!(
        strings(&page["nodes"], "content"),
        ["third", "from the room"]
    );
    assert_eq!(page["totalCount"], 3);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let after = page["pageInfo"]["endCursor"].as_str().unwrap().to_string();
    let rest = saved_page(&app, &ben.token, 2, Some(&after)).await;
    assert_eq!(strings(&rest["nodes"], "content"), ["from the group"]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);

    // Leaving the group hides its messages (a public room's stay readable); coming back shows
    // them again. A deleted message is gone for good.
    app.gql_ok(
        Some(&ben.token),
        "mutation($c: ID!) { leaveChat(chatId: $c) }",
        json!({ "c": group }),
    )
    .await;
    let page = saved_page(&app, &ben.token, 10, None).await;
    assert_eq!(strings(&page["nodes"], "content"), ["from the room"]);
    assert_eq!(page["totalCount"], 1);
    crate::fixtures::add_members(&app, &ana.token, &group, &["ben"]).await;
    assert_eq!(
        saved_page(&app, &ben.token, 10, None).await["totalCount"],
        3
    );
    delete(&app, &ana.token, &third).await;
    assert_eq!(
        saved_page(&app, &ben.token, 10, None).await["totalCount"],
        2
    );

    let unsave = "mutation($id: ID!) { unsaveMessage(messageId: $id) }";
    let answer = app
        .gql_ok(Some(&ben.token), unsave, json!({ "id": in_room }))
        .await;
    assert_eq!(answer["unsaveMessage"], true);
    let again = app
        .gql_ok(Some(&ben.token), unsave, json!({ "id": in_room }))
        .await;
    assert_eq!(again["unsaveMessage"], false);
    let page = saved_page(&app, &ben.token, 10, None).await;
    assert_eq!(strings(&page["nodes"], "content"), ["from the group"]);
    assert!(page["nodes"][0]["isSaved"] == true);
    let bad = saved_page_raw(&app, &ben.token, 0).await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
}

async fn saved_page_raw(app: &TestApp, token: &str, first: i32) -> Value {
    app.gql(
        Some(token),
        "query($first: Int!) { savedMessages(first: $first) { totalCount } }",
        json!({ "first": first }),
    )
    .await
}
