//! Presence and connection liveness: a user is online while any socket of theirs is open,
//! watchers hear each change, `lastSeen` is stored when the last socket closes (or on
//! `touchLastSeen`), and idle sockets get WebSocket pings.
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::fixtures::create_group;
use crate::helpers::{TestApp, error_code, spawn_app, spawn_with_config, test_config};
use crate::live::{LEGACY, MODERN, PRESENCE, PROTOCOLS, Socket};

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("not a date-time: {value}"))
        .with_timezone(&Utc)
}

/// `user(id) { isOnline lastSeen }` as `token`'s user.
async fn seen_as(app: &TestApp, token: &str, user_id: &str) -> Value {
    app.gql_ok(
        Some(token),
        "query($id: ID!) { user(id: $id) { isOnline lastSeen } }",
        json!({ "id": user_id }),
    )
    .await["user"]
        .clone()
}

/// Usernames of `onlineUsers(chatId)`, sorted.
async fn online_users(app: &TestApp, token: &str, chat_id: &str) -> Vec<String> {
    let data = app
        .gql_ok(
            Some(token),
            "query($id: ID!) { onlineUsers(chatId: $id) { username isOnline } }",
            json!({ "id": chat_id }),
        )
        .await;
    let users = data["onlineUsers"].as_array().unwrap();
    assert!(users.iter().all(|u| u["isOnline"] == true), "{data}");
    let mut names: Vec<String> = users
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn presence_follows_sockets_and_stores_last_seen_when_the_last_one_closes() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ben.token, "Team", &["ana", "cyd"]).await;

    // One watcher per protocol; the current state comes first.
    let mut watchers = Vec::new();
    for (user, protocol) in [(&ben, MODERN), (&cyd, LEGACY)] {
        let mut socket = Socket::open(&app, &user.token, protocol).await;
        socket
            .subscribe("p", PRESENCE, json!({ "ids": [ana.id] }))
            .await;
        let first = socket.event("p").await;
        assert_eq!(
            first,
            json!({ "userId": ana.id, "isOnline": false, "lastSeen": null }),
            "{protocol}"
        );
        watchers.push(socket);
    }
    assert_eq!(
        seen_as(&app, &ben.token, &ana.id).await,
        json!({ "isOnline": false, "lastSeen": null })
    );
    assert_eq!(online_users(&app, &ben.token, &group).await, ["ben", "cyd"]);

    let mut previous_last_seen = None;
    for protocol in PROTOCOLS {
        let socket = Socket::open(&app, &ana.token, protocol).await;
        for watcher in &mut watchers {
            let online = watcher.event("p").await;
            assert_eq!(online["userId"], ana.id, "{online}");
            assert_eq!(online["isOnline"], true, "{protocol} socket: {online}");
        }
        assert_eq!(seen_as(&app, &ben.token, &ana.id).await["isOnline"], true);
        assert_eq!(
            online_users(&app, &ben.token, &group).await,
            ["ana", "ben", "cyd"]
        );

        // A second socket and closing the first change nothing: ana is still online.
        let other = Socket::open(&app, &ana.token, protocol).await;
        socket.close().await;
        for watcher in &mut watchers {
            watcher.expect_quiet().await;
        }
        assert_eq!(seen_as(&app, &cyd.token, &ana.id).await["isOnline"], true);

        other.close().await;
        let mut announced = Vec::new();
        for watcher in &mut watchers {
            let offline = watcher.event("p").await;
            assert_eq!(offline["userId"], ana.id, "{offline}");
            assert_eq!(offline["isOnline"], false, "{offline}");
            announced.push(time(&offline["lastSeen"]));
        }
        assert_eq!(announced[0], announced[1]);
        let shown = seen_as(&app, &ben.token, &ana.id).await;
        assert_eq!(shown["isOnline"], false, "{shown}");
        assert_eq!(time(&shown["lastSeen"]), announced[0], "{shown}");
        assert!(previous_last_seen < Some(announced[0]), "lastSeen moves on");
        previous_last_seen = Some(announced[0]);
        assert_eq!(online_users(&app, &ben.token, &group).await, ["ben", "cyd"]);
    }
}

#[tokio::test]
async fn online_users_is_for_those_who_may_read_the_chat() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let eve = app.register("eve").await;
    let group = create_group(&app, &ana.token, "Secret", &[]).await;
    let _eve_online = Socket::open(&app, &eve.token, MODERN).await;
    let response = app
        .gql(
            Some(&eve.token),
            "query($id: ID!) { onlineUsers(chatId: $id) { username } }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
}

#[tokio::test]
async fn touch_last_seen_stores_the_time_it_returns() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let me = "{ me { lastSeen } }";
    assert_eq!(
        app.gql_ok(Some(&ana.token), me, json!({})).await["me"]["lastSeen"],
        Value::Null
    );

    let mut previous = None;
    for _ in 0..2 {
        let before = Utc::now();
        let data = app
            .gql_ok(Some(&ana.token), "mutation { touchLastSeen }", json!({}))
            .await;
        let touched = time(&data["touchLastSeen"]);
        assert!(
            touched >= before - chrono::Duration::seconds(1) && touched <= Utc::now(),
            "{touched} is now"
        );
        let shown = app.gql_ok(Some(&ana.token), me, json!({})).await;
        assert_eq!(time(&shown["me"]["lastSeen"]), touched, "{shown} vs {data}");
        let others_see = seen_as(&app, &ben.token, &ana.id).await;
        assert_eq!(time(&others_see["lastSeen"]), touched, "{others_see}");
        assert_eq!(others_see["isOnline"], false, "touching is not connecting");
        assert!(previous < Some(touched));
        previous = Some(touched);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn idle_sockets_receive_websocket_pings() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    config.ws_ping_seconds = 1;
    let app = spawn_with_config(config).await;
    let ana = app.register("ana").await;

    for protocol in PROTOCOLS {
        let mut socket = Socket::open(&app, &ana.token, protocol).await;
        let deadline = Instant::now() + Duration::from_millis(2500);
        let mut pings = 0;
        while let Ok(frame) = tokio::time::timeout_at(deadline, socket.ws.stream.next()).await {
            match frame {
                Some(Ok(Message::Ping(_))) => pings += 1,
                Some(Ok(Message::Pong(_))) => {}
                other => panic!("{protocol}: an idle socket got {other:?}"),
            }
        }
        assert!(pings >= 1, "{protocol}: no ping within 2.5 s");
        // The socket is still in service (the client answered the pings).
        socket.expect_quiet().await;
    }
}
