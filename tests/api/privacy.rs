//! Presence privacy: each user chooses who sees their online state and last seen (everyone,
//! friends, nobody). The choice applies to `User.isOnline` / `lastSeen`, to a chat's online
//! members and to `presence` subscriptions, whose watchers learn of a change of setting at once
//! and hear nothing more of a user they may no longer see; the same holds when a friendship with a
//! user who shows her presence to friends only starts or ends.
use serde_json::{Value, json};

use crate::fixtures::create_group;
use crate::helpers::{TestApp, TestUser, error_code, spawn_app};
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

/// For a watcher who may not see `user`: their real going offline (`socket` closes) is not told;
/// once they show their presence to everyone again, their state as it is now is the watcher's
/// next event (nothing came in between).
async fn nothing_told_until_shown(
    app: &TestApp,
    user: &TestUser,
    socket: Socket,
    watcher: &mut Socket,
    protocol: &str,
) {
    socket.close().await;
    let mut offline = false;
    for _ in 0..100 {
        offline = seen_as(app, &user.token, &user.id).await["isOnline"] == false;
        if offline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(offline, "{}'s last socket closed", user.username);
    set(app, &user.token, "EVERYONE").await;
    let shown = watcher.event("p").await;
    assert_eq!(shown["isOnline"], false, "{protocol}: {shown}");
    assert!(shown["lastSeen"].is_string(), "{protocol}: {shown}");
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
        nothing_told_until_shown(&app, &ana, socket, &mut watcher, protocol).await;
        watcher.close().await;
    }
}

/// Two instances over Redis: ana and cyd registered on A, cyd watching ana's presence from B
/// (her first state, offline, already read; B's Redis subscription in place).
struct Across {
    a: TestApp,
    b: TestApp,
    _dirs: Vec<tempfile::TempDir>,
    ana: TestUser,
    cyd: TestUser,
    watcher: Socket,
}

/// `Across`, or None when no Redis is given to the tests.
async fn watching_across_instances() -> Option<Across> {
    let redis = crate::cluster::services()?;
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
    Some(Across {
        a,
        b,
        _dirs,
        ana,
        cyd,
        watcher,
    })
}

#[tokio::test]
async fn a_change_of_setting_on_one_instance_reaches_watchers_on_another() {
    let Some(mut across) = watching_across_instances().await else {
        return;
    };
    let (a, ana) = (&across.a, &across.ana);
    let socket = Socket::open(a, &ana.token, PROTOCOLS[0]).await;
    assert_eq!(across.watcher.event("p").await["isOnline"], true);
    set(a, &ana.token, "NOBODY").await;
    assert_eq!(
        across.watcher.event("p").await,
        json!({ "userId": ana.id, "isOnline": false, "lastSeen": null })
    );
    let seen = seen_as(&across.b, &across.cyd.token, &ana.id).await;
    assert_eq!(seen["isOnline"], false);
    socket.close().await;
    across.watcher.close().await;
}

/// A presence shown to friends only follows a friendship as it starts and ends: a watcher who
/// becomes her friend is shown her state at once; when the friendship ends (removed, or by a
/// block) she is shown as hidden at once, and nothing more of her reaches the watcher.
#[tokio::test]
async fn friends_only_presence_follows_a_friendship_as_it_starts_and_ends() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let cyd = app.register("cyd").await;
    let hidden = json!({ "userId": ana.id, "isOnline": false, "lastSeen": null });
    for (round, protocol) in PROTOCOLS.into_iter().enumerate() {
        set(&app, &ana.token, "FRIENDS").await;
        let socket = Socket::open(&app, &ana.token, protocol).await;
        let mut watcher = Socket::open(&app, &cyd.token, protocol).await;
        watcher
            .subscribe("p", PRESENCE, json!({ "ids": [ana.id] }))
            .await;
        assert_eq!(watcher.event("p").await, hidden, "{protocol}: a stranger");

        // Friends (by answering her request, then by accepting it): she appears as she is.
        assert_eq!(
            crate::people::asked(&app, &ana.token, "cyd").await,
            "REQUEST_SENT"
        );
        if round == 0 {
            assert_eq!(
                crate::people::asked(&app, &cyd.token, "ana").await,
                "FRIENDS"
            );
        } else {
            app.gql_ok(
                Some(&cyd.token),
                "mutation($id: ID!) { acceptFriendRequest(userId: $id) }",
                json!({ "id": ana.id }),
            )
            .await;
        }
        let shown = watcher.event("p").await;
        assert_eq!(shown["userId"], json!(ana.id), "{protocol}: {shown}");
        assert_eq!(shown["isOnline"], true, "{protocol}: {shown}");

        // The friendship ends: she removes him, or blocks him.
        let end = if round == 0 {
            "mutation($id: ID!) { removeFriend(userId: $id) }"
        } else {
            "mutation($id: ID!) { blockUser(userId: $id) }"
        };
        app.gql_ok(Some(&ana.token), end, json!({ "id": cyd.id }))
            .await;
        assert_eq!(watcher.event("p").await, hidden, "{protocol}: ended");

        nothing_told_until_shown(&app, &ana, socket, &mut watcher, protocol).await;
        watcher.close().await;
    }
}

/// A friendship made and ended through one instance reaches a presence watcher on another.
#[tokio::test]
async fn a_friendship_on_one_instance_reaches_watchers_on_another() {
    let Some(mut across) = watching_across_instances().await else {
        return;
    };
    let (a, ana, cyd) = (&across.a, &across.ana, &across.cyd);
    set(a, &ana.token, "FRIENDS").await;
    let hidden = json!({ "userId": ana.id, "isOnline": false, "lastSeen": null });
    assert_eq!(across.watcher.event("p").await, hidden);
    let socket = Socket::open(a, &ana.token, PROTOCOLS[0]).await;

    crate::people::asked(a, &ana.token, "cyd").await;
    assert_eq!(crate::people::asked(a, &cyd.token, "ana").await, "FRIENDS");
    assert_eq!(across.watcher.event("p").await["isOnline"], true);
    a.gql_ok(
        Some(&ana.token),
        "mutation($id: ID!) { removeFriend(userId: $id) }",
        json!({ "id": cyd.id }),
    )
    .await;
    assert_eq!(across.watcher.event("p").await, hidden);
    socket.close().await;
    across.watcher.close().await;
}
