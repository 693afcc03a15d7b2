//! Chats end to end: direct chats (by username, email or id, or by sending to a recipient),
//! the chat list (newest activity first, last message, unread count, members), archive, and
//! staff's view of every chat.
use serde_json::json;

use crate::fixtures::{
    assert_bad_input, chat, create_group, create_room, id, member_roles, my_chat_ids, open_direct,
    pairs, register_staff, send, strings, tick, total_messages,
};
use crate::helpers::{error_code, spawn_app};

const OPEN_DIRECT: &str = "mutation($identifier: String!) { openDirectChat(identifier: $identifier) { id kind isPrivate owner { id } memberCount } }";

#[tokio::test]
async fn direct_chat_is_the_same_chat_by_username_email_or_id() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let first = app
        .gql_ok(
            Some(&ana.token),
            OPEN_DIRECT,
            json!({ "identifier": "ben" }),
        )
        .await;
    let direct = &first["openDirectChat"];
    assert_eq!(direct["kind"], "DIRECT");
    assert_eq!(direct["isPrivate"], true);
    assert!(
        direct["owner"].is_null(),
        "no owner in a direct chat: {direct}"
    );
    assert_eq!(direct["memberCount"], 2);
    let chat_id = id(direct);
    for identifier in [ben.email.as_str(), ben.id.as_str(), "ben"] {
        let again = open_direct(&app, &ana.token, identifier).await;
        assert_eq!(again, chat_id, "identifier {identifier}");
    }
    assert_eq!(
        open_direct(&app, &ben.token, "ana").await,
        chat_id,
        "same chat from the other side"
    );
    assert_eq!(
        my_chat_ids(&app, &ana.token, false).await,
        vec![chat_id.clone()]
    );

    for identifier in ["ana", ana.email.as_str(), ana.id.as_str()] {
        let response = app
            .gql(
                Some(&ana.token),
                OPEN_DIRECT,
                json!({ "identifier": identifier }),
            )
            .await;
        assert_bad_input(&response, None);
    }
    let unknown = app
        .gql(
            Some(&ana.token),
            OPEN_DIRECT,
            json!({ "identifier": "nobody_here" }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND", "{unknown}");
}

#[tokio::test]
async fn sending_to_a_recipient_creates_the_direct_chat_once() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let send_to = "mutation($to: ID!, $content: String!) { sendMessage(input: {recipientId: $to, content: $content}) { chatId content sender { username } chat { kind memberCount } } }";
    let first = app
        .gql_ok(
            Some(&ana.token),
            send_to,
            json!({ "to": ben.id, "content": "salam" }),
        )
        .await["sendMessage"]
        .clone();
    assert_eq!(first["chat"], json!({ "kind": "DIRECT", "memberCount": 2 }));
    assert_eq!(first["sender"]["username"], "ana");
    let second = app
        .gql_ok(
            Some(&ana.token),
            send_to,
            json!({ "to": ben.id, "content": "again" }),
        )
        .await["sendMessage"]
        .clone();
    assert_eq!(
        second["chatId"], first["chatId"],
        "the direct chat is reused"
    );
    let chat_id = first["chatId"].as_str().unwrap();
    assert_eq!(open_direct(&app, &ben.token, "ana").await, chat_id);
    assert_eq!(total_messages(&app, &ben.token, chat_id).await, 2);

    let both = app
        .gql(
            Some(&ana.token),
            "mutation($chat: ID!, $to: ID!) { sendMessage(input: {chatId: $chat, recipientId: $to, content: \"x\"}) { id } }",
            json!({ "chat": chat_id, "to": ben.id }),
        )
        .await;
    assert_bad_input(&both, None);
    let neither = app
        .gql(
            Some(&ana.token),
            "mutation { sendMessage(input: {content: \"x\"}) { id } }",
            json!({}),
        )
        .await;
    assert_bad_input(&neither, None);
    let unknown = app
        .gql(
            Some(&ana.token),
            send_to,
            json!({ "to": uuid::Uuid::new_v4().to_string(), "content": "x" }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND", "{unknown}");
    assert_eq!(
        total_messages(&app, &ana.token, chat_id).await,
        2,
        "refusals sent nothing"
    );
}

#[tokio::test]
async fn chats_are_listed_newest_activity_first() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let first = create_group(&app, &ana.token, "First", &["ben"]).await;
    tick().await;
    let second = create_group(&app, &ana.token, "Second", &["cyrus"]).await;
    tick().await;
    let direct = open_direct(&app, &ana.token, "ben").await;
    assert_eq!(
        my_chat_ids(&app, &ana.token, false).await,
        [direct.clone(), second.clone(), first.clone()]
    );

    tick().await;
    send(&app, &ben.token, &first, "hello first").await;
    assert_eq!(
        my_chat_ids(&app, &ana.token, false).await,
        [first.clone(), direct.clone(), second.clone()],
        "a message moves its chat to the top"
    );
    let list = app
        .gql_ok(
            Some(&ana.token),
            "{ chats(first: 50) { totalCount nodes { id title kind myRole unreadCount archived lastMessage { content sender { username } } members { nodes { user { username } role } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(list["chats"]["totalCount"], 3);
    let top = &list["chats"]["nodes"][0];
    assert_eq!(top["title"], "First");
    assert_eq!(top["kind"], "GROUP");
    assert_eq!(top["myRole"], "OWNER");
    assert_eq!(top["unreadCount"], 1);
    assert_eq!(top["archived"], false);
    assert_eq!(
        top["lastMessage"],
        json!({ "content": "hello first", "sender": { "username": "ben" } })
    );
    assert_eq!(
        member_roles(top),
        pairs(&[("ana", "OWNER"), ("ben", "MEMBER")])
    );
    let last = &list["chats"]["nodes"][2];
    assert_eq!(last["id"], second.as_str());
    assert!(last["lastMessage"].is_null(), "{last}");
    assert_eq!(last["unreadCount"], 0);

    tick().await;
    send(&app, &ana.token, &second, "own message").await;
    assert_eq!(my_chat_ids(&app, &ana.token, false).await[0], second);
    assert_eq!(
        chat(&app, &ana.token, &second, "unreadCount").await["unreadCount"],
        0,
        "own messages are not unread"
    );
    assert_eq!(
        chat(&app, &cyrus.token, &second, "unreadCount").await["unreadCount"],
        1
    );
}

#[tokio::test]
async fn archive_hides_a_chat_from_my_list_only() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let first = create_group(&app, &ana.token, "First", &["ben"]).await;
    tick().await;
    let second = create_group(&app, &ana.token, "Second", &["ben"]).await;
    let archive = "mutation($id: ID!) { archiveChat(chatId: $id) { id archived } }";
    let archived = app
        .gql_ok(Some(&ana.token), archive, json!({ "id": first }))
        .await;
    assert_eq!(
        archived["archiveChat"],
        json!({ "id": first, "archived": true })
    );
    assert_eq!(
        my_chat_ids(&app, &ana.token, false).await,
        vec![second.clone()]
    );
    assert_eq!(
        my_chat_ids(&app, &ana.token, true).await,
        vec![first.clone()]
    );
    assert_eq!(
        my_chat_ids(&app, &ben.token, false).await,
        [second.clone(), first.clone()],
        "archiving is per member"
    );
    assert_eq!(
        chat(&app, &ben.token, &first, "archived").await["archived"],
        false
    );

    let unarchive = "mutation($id: ID!) { unarchiveChat(chatId: $id) { id archived } }";
    let back = app
        .gql_ok(Some(&ana.token), unarchive, json!({ "id": first }))
        .await;
    assert_eq!(
        back["unarchiveChat"],
        json!({ "id": first, "archived": false })
    );
    assert_eq!(my_chat_ids(&app, &ana.token, false).await, [second, first]);
    assert!(my_chat_ids(&app, &ana.token, true).await.is_empty());
}

#[tokio::test]
async fn staff_list_every_chat_and_others_are_forbidden() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let cyrus = app.register("cyrus").await;
    app.register("ben").await;
    let staff = register_staff(&app, "root").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;
    let room = create_room(&app, &cyrus.token, "Hidden", true).await;
    let all = "{ chats(all: true, first: 50) { nodes { id myRole } } }";
    let data = app.gql_ok(Some(&staff.token), all, json!({})).await;
    let ids = strings(&data["chats"]["nodes"], "id");
    assert!(ids.contains(&group) && ids.contains(&room), "{data}");
    assert!(
        data["chats"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["myRole"].is_null()),
        "staff is in none of them: {data}"
    );
    assert!(
        my_chat_ids(&app, &staff.token, false).await.is_empty(),
        "without `all` only my chats"
    );
    let refused = app.gql(Some(&ana.token), all, json!({})).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(
        chat(&app, &staff.token, &room, "title").await["title"],
        "Hidden"
    );
}
