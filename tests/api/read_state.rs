//! Read state: the read marker only moves forward, unread counts, and a message's status, readBy
//! and isRead as seen from both sides.
use serde_json::{Value, json};

use crate::fixtures::{create_group, delete, open_direct, send, send_many, strings, unread};
use crate::helpers::{TestApp, spawn_app};

const MARK_READ: &str = "mutation($id: ID!) { markRead(messageId: $id) }";
const MARK_CHAT_READ: &str = "mutation($id: ID!) { markChatRead(chatId: $id) }";
const STATE: &str = "query($id: ID!) { message(id: $id) { status isRead readBy { username } } }";

async fn mark_read(app: &TestApp, token: &str, message_id: &str) -> Value {
    app.gql_ok(Some(token), MARK_READ, json!({ "id": message_id }))
        .await["markRead"]
        .clone()
}

async fn mark_chat_read(app: &TestApp, token: &str, chat_id: &str) -> Value {
    app.gql_ok(Some(token), MARK_CHAT_READ, json!({ "id": chat_id }))
        .await["markChatRead"]
        .clone()
}

/// (status, isRead, sorted readBy usernames) of a message as `token`'s user sees it.
async fn state(app: &TestApp, token: &str, message_id: &str) -> (String, bool, Vec<String>) {
    let data = app
        .gql_ok(Some(token), STATE, json!({ "id": message_id }))
        .await;
    let message = &data["message"];
    let mut read_by = strings(&message["readBy"], "username");
    read_by.sort();
    (
        message["status"].as_str().unwrap().to_string(),
        message["isRead"].as_bool().unwrap(),
        read_by,
    )
}

fn seen(status: &str, is_read: bool, read_by: &[&str]) -> (String, bool, Vec<String>) {
    (
        status.to_string(),
        is_read,
        read_by.iter().map(|u| u.to_string()).collect(),
    )
}

#[tokio::test]
async fn the_read_marker_only_moves_forward() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let direct = open_direct(&app, &ana.token, "ben").await;
    let ids = send_many(&app, &ana.token, &direct, "m", 5).await;
    assert_eq!(unread(&app, &ben.token, &direct).await, 5);

    assert_eq!(mark_read(&app, &ben.token, &ids[2]).await, 3);
    assert_eq!(unread(&app, &ben.token, &direct).await, 2);
    assert_eq!(
        mark_read(&app, &ben.token, &ids[0]).await,
        0,
        "an older message is already read"
    );
    assert_eq!(
        unread(&app, &ben.token, &direct).await,
        2,
        "the marker did not move back"
    );
    assert!(
        !state(&app, &ben.token, &ids[3]).await.1,
        "still unread after the refused move"
    );
    assert_eq!(mark_read(&app, &ben.token, &ids[4]).await, 2);
    assert_eq!(mark_read(&app, &ben.token, &ids[4]).await, 0);
    assert_eq!(unread(&app, &ben.token, &direct).await, 0);

    send_many(&app, &ana.token, &direct, "n", 2).await;
    assert_eq!(unread(&app, &ben.token, &direct).await, 2);
    assert_eq!(mark_chat_read(&app, &ben.token, &direct).await, 2);
    assert_eq!(mark_chat_read(&app, &ben.token, &direct).await, 0);
    assert_eq!(unread(&app, &ben.token, &direct).await, 0);
    assert_eq!(
        unread(&app, &ana.token, &direct).await,
        0,
        "own messages are never unread"
    );
}

#[tokio::test]
async fn status_goes_from_sent_to_delivered_to_read() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let direct = open_direct(&app, &ana.token, "ben").await;
    let earlier = send(&app, &ana.token, &direct, "earlier").await;
    let message = send(&app, &ana.token, &direct, "hello").await;
    let fetch = "query($id: ID!) { messages(chatId: $id) { totalCount } }";

    assert_eq!(
        state(&app, &ana.token, &message).await,
        seen("SENT", false, &[])
    );
    app.gql_ok(Some(&ana.token), fetch, json!({ "id": direct }))
        .await;
    assert_eq!(
        state(&app, &ana.token, &message).await,
        seen("SENT", false, &[]),
        "the sender's own fetch delivers nothing"
    );
    assert!(!state(&app, &ben.token, &message).await.1);

    app.gql_ok(Some(&ben.token), fetch, json!({ "id": direct }))
        .await;
    assert_eq!(
        state(&app, &ana.token, &message).await,
        seen("DELIVERED", false, &[])
    );
    assert!(!state(&app, &ben.token, &message).await.1);

    mark_read(&app, &ben.token, &message).await;
    assert_eq!(
        state(&app, &ana.token, &message).await,
        seen("READ", true, &["ben"])
    );
    assert_eq!(
        state(&app, &ana.token, &earlier).await,
        seen("READ", true, &["ben"]),
        "the marker passed the earlier message too"
    );
    assert!(state(&app, &ben.token, &message).await.1, "ben read it");

    // A reply from ben is SENT for him until ana fetches and reads it.
    let reply = send(&app, &ben.token, &direct, "hi").await;
    assert_eq!(
        state(&app, &ben.token, &reply).await,
        seen("SENT", false, &[])
    );
    assert!(!state(&app, &ana.token, &reply).await.1);
    mark_chat_read(&app, &ana.token, &direct).await;
    assert_eq!(
        state(&app, &ben.token, &reply).await,
        seen("READ", true, &["ana"])
    );
}

#[tokio::test]
async fn read_by_lists_every_member_whose_marker_reached_it() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let group = create_group(&app, &ana.token, "Three", &["ben", "cyrus"]).await;
    let message = send(&app, &ana.token, &group, "news").await;
    mark_chat_read(&app, &ben.token, &group).await;
    assert_eq!(
        state(&app, &ana.token, &message).await,
        seen("READ", true, &["ben"])
    );
    assert!(
        !state(&app, &cyrus.token, &message).await.1,
        "cyrus has not read it"
    );
    mark_read(&app, &cyrus.token, &message).await;
    assert_eq!(
        state(&app, &ana.token, &message).await.2,
        ["ben", "cyrus"],
        "readBy never lists the sender"
    );
}

#[tokio::test]
async fn unread_count_follows_reads_deletes_and_new_messages() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Counts", &["ben"]).await;
    let old = send_many(&app, &ana.token, &group, "old", 3).await;
    assert_eq!(unread(&app, &ben.token, &group).await, 3);
    assert_eq!(mark_chat_read(&app, &ben.token, &group).await, 3);
    assert_eq!(unread(&app, &ben.token, &group).await, 0);

    let new = send_many(&app, &ana.token, &group, "new", 2).await;
    assert_eq!(unread(&app, &ben.token, &group).await, 2);
    delete(&app, &ana.token, &new[0]).await;
    assert_eq!(
        unread(&app, &ben.token, &group).await,
        1,
        "a deleted message is not unread"
    );
    delete(&app, &ana.token, &old[0]).await;
    assert_eq!(
        unread(&app, &ben.token, &group).await,
        1,
        "deleting a read one changes nothing"
    );
    let last = send(&app, &ana.token, &group, "latest").await;
    assert_eq!(unread(&app, &ben.token, &group).await, 2);
    mark_read(&app, &ben.token, &last).await;
    assert_eq!(unread(&app, &ben.token, &group).await, 0);
    // Past ben's marker now: his own message is not unread for him, but is for ana.
    send(&app, &ben.token, &group, "mine").await;
    assert_eq!(
        unread(&app, &ben.token, &group).await,
        0,
        "own messages do not count"
    );
    assert_eq!(unread(&app, &ana.token, &group).await, 1);
}
