//! Presence privacy: each user chooses who sees their online state and last seen (everyone,
//! friends, nobody). The choice applies to `User.isOnline` / `lastSeen`, to a chat's online
//! members and to `presence` subscriptions, whose watchers learn of a change of setting at once
//! and hear nothing more of a user they may no longer see.
use serde_json::{Value, json};

use crate::fixtures::create_group;
use crate::helpers::{TestApp, error_code, spawn_app};
use crate::live::{PRESENCE, PROTOCOLS, Socket};

async fn seen_as(app: &TestApp, token: &str, user_id: &str) -> Value {
    app.gql_ok(
        Some(token),
        "query($id: ID!) { user(id: $id) { isOnline lastSeen presenceVisibility } }",
        json!({ "id": user_id }),
    )
    .await["user"]
        .clone()
}

async fn set(app: &TestApp, token: &str, visibility: &str) -> Value {
    app.gql(
        Some(token),
        "mutation($v: PresenceVisibility!) { setPresenceVisibility(visibility: $v) {
           username presenceVisibility } }",
        json!({ "v": visibility }),
    )
    .await
}

async fn online_names(app: &TestApp, token: &str, chat_id: &str) -> Vec<String> {
    let data = app
        .gql_ok(
            Some(token),
            "query($id: ID!) { onlineUsers(chatId: $id) { username } }",
            json!({ "id": chat_id }),
        )
        .await;
    let mut names = crate::fixtures::strings(&data["onlineUsers"], "username");
    names.sort();
    names
}

#[tokio::test]
async fn the_setting_decides_who_sees_online_state_and_last_seen() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let group = create_group(&app, &ana.token, "club", &["ben", "cyd"]).await;
    crate::people::asked(&app, &ana.token, "ben").await;
    crate::people::asked(&app, &ben.token, "ana").await;
    // A last seen to hide, then ana online.
    app.gql_ok(Some(&ana.token), "mutation { touchLastSeen }", json!({}))
        .await;
    let socket = Socket::open(&app, &ana.token, PROTOCOLS[0]).await;

    let everyone = seen_as(&app, &cyd.token, &ana.id).await;
    assert_eq!(everyone["isOnline"], true, "{everyone}");
    assert!(everyone["lastSeen"].is_string(), "{everyone}");
    assert_eq!(
        everyone["presenceVisibility"],
        Value::Null,
        "only ana sees her setting"
    );
    assert_eq!(online_names(&app, &cyd.token, &group).await, ["ana"]);

    let answer = set(&app, &ana.token, "FRIENDS").await;
    assert_eq!(
        answer["data"]["setPresenceVisibility"],
        json!({ "username": "ana", "presenceVisibility": "FRIENDS" }),
        "{answer}"
    );
    let stranger = seen_as(&app, &cyd.token, &ana.id).await;
    assert_eq!(
        (&stranger["isOnline"], &stranger["lastSeen"]),
        (&json!(false), &Value::Null)
    );
    assert!(online_names(&app, &cyd.token, &group).await.is_empty());
    let friend = seen_as(&app, &ben.token, &ana.id).await;
    assert_eq!(friend["isOnline"], true, "{friend}");
    assert!(friend["lastSeen"].is_string());
    assert_eq!(online_names(&app, &ben.token, &group).await, ["ana"]);

    set(&app, &ana.token, "NOBODY").await;
    let friend = seen_as(&app, &ben.token, &ana.id).await;
    assert_eq!(
        (&friend["isOnline"], &friend["lastSeen"]),
        (&json!(false), &Value::Null)
    );
    let own = seen_as(&app, &ana.token, &ana.id).await;
    assert_eq!(own["isOnline"], true, "one always sees oneself: {own}");
    assert_eq!(own["presenceVisibility"], "NOBODY");

    let bad = set(&app, &ana.token, "SOMETIMES").await;
    assert!(!error_code(&bad).is_empty(), "{bad}");
    socket.close().await;
}

#[tokio::test]
async fn presence_watchers_follow_a_change_of_setting_at_once() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let cyd = app.register("cyd").await;
    for protocol in PROTOCOLS {
        let mut watcher = Socket::open(&app, &cyd.token, protocol).await;
        watcher
            .subscribe("p", PRESENCE, json!({ "ids": [ana.id] }))
            .await;
        assert_eq!(watcher.event("p").await["isOnline"], false);
        let socket = Socket::open(&app, &ana.token, protocol).await;
        assert_eq!(watcher.event("p").await["isOnline"], true, "{protocol}");

        // Hidden: the watcher sees her go "offline", with no last seen, at once.
        set(&app, &ana.token, "NOBODY").await;
        assert_eq!(
            watcher.event("p").await,
            json!({ "userId": ana.id, "isOnline": false, "lastSeen": null }),
            "{protocol}"
        );
        // Her real going offline is not told.
        socket.close().await;
        let mut offline = false;
        for _ in 0..100 {
            offline = seen_as(&app, &ana.token, &ana.id).await["isOnline"] == false;
            if offline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(offline, "ana's last socket closed");
        // Shown again: her state as it is now comes next (nothing came in between).
        set(&app, &ana.token, "EVERYONE").await;
        let shown = watcher.event("p").await;
        assert_eq!(shown["isOnline"], false, "{protocol}: {shown}");
        assert!(shown["lastSeen"].is_string(), "{protocol}: {shown}");
        watcher.close().await;
    }
}

#[tokio::test]
async fn a_change_of_setting_on_one_instance_reaches_watchers_on_another() {
    let Some(redis) = crate::cluster::services() else {
        return;
    };
    let (a, b, _dirs) = crate::cluster::spawn_pair_with(&redis, |_| {}).await;
    let ana = a.register("ana").await;
    let cyd = a.register("cyd").await;
    let mut watcher = Socket::open(&b, &cyd.token, PROTOCOLS[0]).await;
    watcher
        .subscribe("p", PRESENCE, json!({ "ids": [ana.id] }))
        .await;
    assert_eq!(watcher.event("p").await["isOnline"], false);
    let channel = format!("{}presence:{}", b.state.config.redis_prefix, ana.id);
    crate::cluster::wait_for_subscriber(&redis, &channel).await;

    let socket = Socket::open(&a, &ana.token, PROTOCOLS[0]).await;
    assert_eq!(watcher.event("p").await["isOnline"], true);
    set(&a, &ana.token, "NOBODY").await;
    assert_eq!(
        watcher.event("p").await,
        json!({ "userId": ana.id, "isOnline": false, "lastSeen": null })
    );
    assert_eq!(seen_as(&b, &cyd.token, &ana.id).await["isOnline"], false);
    socket.close().await;
    watcher.close().await;
}
