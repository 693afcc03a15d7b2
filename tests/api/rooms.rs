//! Rooms end to end: public and private rooms in `rooms`, joining, invites, leaving, and muted
//! members.
use serde_json::json;

use crate::fixtures::{
    chat, create_group, create_room, id, join_room, my_chat_ids, send, strings, total_messages,
};
use crate::helpers::{TestApp, error_code, spawn_app};

/// Names of the rooms `token`'s user can list, sorted.
async fn room_names(app: &TestApp, token: &str, search: &str) -> Vec<String> {
    let data = app
        .gql_ok(
            Some(token),
            "query($s: String) { rooms(search: $s, first: 50) { nodes { name } } }",
            json!({ "s": search }),
        )
        .await;
    let mut names = strings(&data["rooms"]["nodes"], "name");
    names.sort();
    names
}

#[tokio::test]
async fn rooms_lists_public_rooms_and_my_private_rooms() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let created = app
        .gql_ok(
            Some(&ana.token),
            "mutation { createRoom(input: {name: \"Lobby\", description: \"all welcome\"}) { id kind name description isPrivate myRole memberCount owner { id } } }",
            json!({}),
        )
        .await["createRoom"]
        .clone();
    assert_eq!(created["kind"], "ROOM");
    assert_eq!(created["isPrivate"], false, "rooms are public unless asked");
    assert_eq!(created["myRole"], "OWNER");
    assert_eq!(created["memberCount"], 1);
    assert_eq!(created["owner"]["id"], ana.id.as_str());
    let lobby = id(&created);
    let secret = create_room(&app, &ana.token, "Secret", true).await;
    assert_eq!(
        chat(&app, &ana.token, &secret, "isPrivate").await["isPrivate"],
        true
    );
    create_room(&app, &ben.token, "Hideout", true).await;
    create_group(&app, &ana.token, "Lounge", &["ben"]).await;
    join_room(&app, &ben.token, &lobby).await;

    assert_eq!(
        room_names(&app, &ana.token, "").await,
        ["Lobby", "Secret"],
        "groups and others' private rooms are not listed"
    );
    assert_eq!(room_names(&app, &ben.token, "").await, ["Hideout", "Lobby"]);
    assert_eq!(room_names(&app, &cyrus.token, "").await, ["Lobby"]);
    assert_eq!(room_names(&app, &cyrus.token, "LOB").await, ["Lobby"]);
    assert!(room_names(&app, &cyrus.token, "hide").await.is_empty());
    assert_eq!(room_names(&app, &ana.token, "sec").await, ["Secret"]);
    let counts = app
        .gql_ok(
            Some(&cyrus.token),
            "{ rooms(first: 50) { nodes { name memberCount myRole } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        counts["rooms"]["nodes"],
        json!([{ "name": "Lobby", "memberCount": 2, "myRole": null }])
    );
}

#[tokio::test]
async fn private_rooms_need_an_invite_and_members_can_leave() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let dana = app.register("dana").await;
    app.register("cyrus").await;
    let lobby = create_room(&app, &ana.token, "Lobby", false).await;
    let secret = create_room(&app, &ana.token, "Secret", true).await;
    let join = "mutation($id: ID!) { joinRoom(roomId: $id) { id myRole memberCount } }";
    let joined = app
        .gql_ok(Some(&ben.token), join, json!({ "id": lobby }))
        .await;
    assert_eq!(
        joined["joinRoom"],
        json!({ "id": lobby, "myRole": "MEMBER", "memberCount": 2 })
    );

    let uninvited = app
        .gql(Some(&ben.token), join, json!({ "id": secret }))
        .await;
    assert_eq!(error_code(&uninvited), "NOT_FOUND", "{uninvited}");
    let room = "query($id: ID!) { room(id: $id) { id } }";
    let hidden = app
        .gql(Some(&ben.token), room, json!({ "id": secret }))
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");

    let invite_q =
        "mutation($id: ID!, $who: [String!]!) { inviteToRoom(roomId: $id, identifiers: $who) }";
    let invited = app
        .gql_ok(
            Some(&ana.token),
            invite_q,
            json!({ "id": secret, "who": ["ben", "cyrus@example.com"] }),
        )
        .await;
    assert_eq!(invited["inviteToRoom"], 2);
    let again = app
        .gql_ok(
            Some(&ana.token),
            invite_q,
            json!({ "id": secret, "who": ["ben"] }),
        )
        .await;
    assert_eq!(again["inviteToRoom"], 0, "already invited");
    let joined = app
        .gql_ok(Some(&ben.token), join, json!({ "id": secret }))
        .await;
    assert_eq!(
        joined["joinRoom"],
        json!({ "id": secret, "myRole": "MEMBER", "memberCount": 2 })
    );
    assert_eq!(room_names(&app, &ben.token, "").await, ["Lobby", "Secret"]);
    let by_member = app
        .gql(
            Some(&ben.token),
            invite_q,
            json!({ "id": secret, "who": ["dana"] }),
        )
        .await;
    assert_eq!(error_code(&by_member), "FORBIDDEN", "{by_member}");
    let still_out = app
        .gql(Some(&dana.token), join, json!({ "id": secret }))
        .await;
    assert_eq!(error_code(&still_out), "NOT_FOUND", "{still_out}");

    let leave = "mutation($id: ID!) { leaveRoom(roomId: $id) }";
    assert_eq!(
        app.gql_ok(Some(&ben.token), leave, json!({ "id": lobby }))
            .await["leaveRoom"],
        true
    );
    assert_eq!(
        chat(&app, &ana.token, &lobby, "memberCount").await["memberCount"],
        1
    );
    let visitor = chat(&app, &ben.token, &lobby, "myRole").await;
    assert!(
        visitor["myRole"].is_null(),
        "a public room stays readable: {visitor}"
    );
    assert_eq!(
        my_chat_ids(&app, &ben.token, false).await,
        vec![secret.clone()]
    );
    assert_eq!(
        app.gql_ok(Some(&ben.token), leave, json!({ "id": secret }))
            .await["leaveRoom"],
        true
    );
    let gone = app
        .gql(Some(&ben.token), room, json!({ "id": secret }))
        .await;
    assert_eq!(error_code(&gone), "NOT_FOUND", "{gone}");
}

#[tokio::test]
async fn muted_members_cannot_post_until_unmuted() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let room = create_room(&app, &ana.token, "Lobby", false).await;
    join_room(&app, &ben.token, &room).await;
    send(&app, &ben.token, &room, "before").await;
    let mute = "mutation($chat: ID!, $user: ID!, $muted: Boolean!) { muteMember(chatId: $chat, userId: $user, muted: $muted) }";
    let by_member = app
        .gql(
            Some(&ben.token),
            mute,
            json!({ "chat": room, "user": ana.id, "muted": true }),
        )
        .await;
    assert_eq!(error_code(&by_member), "FORBIDDEN", "{by_member}");
    let muted = app
        .gql_ok(
            Some(&ana.token),
            mute,
            json!({ "chat": room, "user": ben.id, "muted": true }),
        )
        .await;
    assert_eq!(muted["muteMember"], true);
    assert_eq!(
        chat(&app, &ben.token, &room, "isMuted").await["isMuted"],
        true
    );
    let members = chat(
        &app,
        &ana.token,
        &room,
        "isMuted members { nodes { user { username } isMuted } }",
    )
    .await;
    assert_eq!(members["isMuted"], false, "the admin is not muted");
    let ben_node = members["members"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["user"]["username"] == "ben")
        .cloned()
        .unwrap();
    assert_eq!(ben_node["isMuted"], true);

    let post =
        "mutation($chat: ID!) { sendMessage(input: {chatId: $chat, content: \"muted?\"}) { id } }";
    let refused = app
        .gql(Some(&ben.token), post, json!({ "chat": room }))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    app.gql_ok(
        Some(&ana.token),
        mute,
        json!({ "chat": room, "user": ben.id, "muted": false }),
    )
    .await;
    assert_eq!(
        chat(&app, &ben.token, &room, "isMuted").await["isMuted"],
        false
    );
    send(&app, &ben.token, &room, "after").await;
    assert_eq!(
        total_messages(&app, &ana.token, &room).await,
        2,
        "only the refused post is missing"
    );
}
