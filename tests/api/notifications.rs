//! Notifications: stored for friend requests and acceptances, additions to groups and room
//! invites; listed newest first and paged, counted unread, marked read by id or all at once,
//! the same from every session of the user; announced live in `myEvents`; never caused by
//! someone the user blocked.
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures::{add_members, create_group, create_room, invite, strings};
use crate::helpers::{TestApp, error_code, spawn_app};
use crate::live::{MODERN, Socket};

const LIST: &str = "query($first: Int, $after: String, $unread: Boolean) {
    notifications(first: $first, after: $after, unreadOnly: $unread) {
      nodes { id kind isRead actor { username } chat { id } }
      pageInfo { hasNextPage endCursor }
      totalCount } }";

async fn list(app: &TestApp, token: &str, variables: Value) -> Value {
    app.gql_ok(Some(token), LIST, variables).await["notifications"].clone()
}

async fn unread(app: &TestApp, token: &str) -> u64 {
    app.gql_ok(Some(token), "{ unreadNotificationCount }", json!({}))
        .await["unreadNotificationCount"]
        .as_u64()
        .unwrap()
}

async fn mark(app: &TestApp, token: &str, ids: Option<Vec<&str>>) -> Value {
    app.gql(
        Some(token),
        "mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) }",
        json!({ "ids": ids }),
    )
    .await
}

#[tokio::test]
async fn notifications_are_listed_counted_and_read_alike_from_every_session() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let ben_phone = app.login_token("ben").await;

    crate::people::asked(&app, &ana.token, "ben").await;
    assert_eq!(unread(&app, &ben.token).await, 1);
    app.gql_ok(
        Some(&ben.token),
        "mutation($id: ID!) { acceptFriendRequest(userId: $id) }",
        json!({ "id": ana.id }),
    )
    .await;
    let ana_list = list(&app, &ana.token, json!({})).await;
    assert_eq!(strings(&ana_list["nodes"], "kind"), ["FRIEND_ACCEPTED"]);
    assert_eq!(strings(&ana_list["nodes"], "actor/username"), ["ben"]);

    let group = create_group(&app, &ana.token, "club", &["ben"]).await;
    let other = create_group(&app, &ana.token, "band", &[]).await;
    add_members(&app, &ana.token, &other, &["ben"]).await;
    let room = create_room(&app, &ana.token, "den", true).await;
    invite(&app, &ana.token, &room, &["ben"]).await;

    // The other session sees the same, newest first.
    assert_eq!(unread(&app, &ben_phone).await, 4);
    let all = list(&app, &ben_phone, json!({ "unread": true })).await;
    assert_eq!(
        strings(&all["nodes"], "kind"),
        [
            "ROOM_INVITE",
            "ADDED_TO_GROUP",
            "ADDED_TO_GROUP",
            "FRIEND_REQUEST"
        ]
    );
    assert_eq!(
        strings(&all["nodes"], "chat/id"),
        [room.as_str(), &other, &group, ""]
    );
    assert_eq!(strings(&all["nodes"], "actor/username"), ["ana"; 4]);
    assert_eq!(all["totalCount"], 4, "{all}");
    let ids = strings(&all["nodes"], "id");

    // Paged by two.
    let first = list(&app, &ben.token, json!({ "first": 2 })).await;
    assert_eq!(strings(&first["nodes"], "id"), ids[..2]);
    assert_eq!(first["pageInfo"]["hasNextPage"], true, "{first}");
    let cursor = first["pageInfo"]["endCursor"].as_str().unwrap();
    let second = list(&app, &ben.token, json!({ "first": 2, "after": cursor })).await;
    assert_eq!(strings(&second["nodes"], "id"), ids[2..]);
    assert_eq!(second["pageInfo"]["hasNextPage"], false, "{second}");

    // Read on one session, read on the other.
    let marked = mark(&app, &ben.token, Some(vec![&ids[0]])).await;
    assert_eq!(marked["data"]["markNotificationsRead"], 1, "{marked}");
    assert_eq!(unread(&app, &ben_phone).await, 3);
    let again = mark(&app, &ben_phone, Some(vec![&ids[0]])).await;
    assert_eq!(again["data"]["markNotificationsRead"], 0, "{again}");
    // Someone else's notifications are passed over.
    let foreign = mark(&app, &ana.token, Some(vec![&ids[1]])).await;
    assert_eq!(foreign["data"]["markNotificationsRead"], 0, "{foreign}");
    assert_eq!(unread(&app, &ben.token).await, 3);
    let rest = mark(&app, &ben_phone, None).await;
    assert_eq!(rest["data"]["markNotificationsRead"], 3, "{rest}");
    assert_eq!(unread(&app, &ben.token).await, 0);
    let read = list(&app, &ben.token, json!({})).await;
    let nodes = read["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4, "{read}");
    assert!(nodes.iter().all(|n| n["isRead"] == true), "{read}");
    assert!(
        list(&app, &ben.token, json!({ "unread": true })).await["nodes"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    for (answer, field) in [
        (
            app.gql(Some(&ben.token), LIST, json!({ "first": 0 })).await,
            "first",
        ),
        (
            app.gql(Some(&ben.token), LIST, json!({ "after": "nonsense" }))
                .await,
            "after",
        ),
        (mark(&app, &ben.token, Some(vec!["not-an-id"])).await, "ids"),
    ] {
        assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
        assert_eq!(
            answer["errors"][0]["extensions"]["field"], field,
            "{answer}"
        );
    }
    let anonymous = app
        .gql(None, "{ unreadNotificationCount }", json!({}))
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED", "{anonymous}");
}

#[tokio::test]
async fn a_notification_arrives_live_and_a_blocked_user_causes_none() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cal = app.register("cal").await;
    let mut live = Socket::open(&app, &ben.token, MODERN).await;
    let query = "subscription { myEvents { __typename
        ... on NotificationCreated { notification { kind actor { username } chat { id } isRead } } } }";
    live.subscribe("me", query, json!({})).await;

    let room = create_room(&app, &ana.token, "den", true).await;
    invite(&app, &ana.token, &room, &["ben"]).await;
    let event = live.event_within("me", Duration::from_secs(5)).await;
    assert_eq!(event["__typename"], "NotificationCreated", "{event}");
    let notification = &event["notification"];
    assert_eq!(notification["kind"], "ROOM_INVITE", "{event}");
    assert_eq!(notification["actor"]["username"], "ana", "{event}");
    assert_eq!(notification["chat"]["id"], room.as_str(), "{event}");
    assert_eq!(notification["isRead"], false, "{event}");
    live.close().await;

    // Ben blocks cal: nothing cal does reaches ben's notifications.
    app.gql_ok(
        Some(&ben.token),
        "mutation($id: ID!) { blockUser(userId: $id) }",
        json!({ "id": cal.id }),
    )
    .await;
    let before = unread(&app, &ben.token).await;
    create_group(&app, &cal.token, "club", &["ben"]).await;
    let group = create_group(&app, &cal.token, "band", &[]).await;
    add_members(&app, &cal.token, &group, &["ben"]).await;
    let den = create_room(&app, &cal.token, "cave", true).await;
    invite(&app, &cal.token, &den, &["ben"]).await;
    let refused = app
        .gql(
            Some(&cal.token),
            "mutation { sendFriendRequest(identifier: \"ben\") }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(unread(&app, &ben.token).await, before);
    // Ana, not blocked, still does.
    invite(
        &app,
        &ana.token,
        &create_room(&app, &ana.token, "hall", true).await,
        &["ben"],
    )
    .await;
    assert_eq!(unread(&app, &ben.token).await, before + 1);
}
