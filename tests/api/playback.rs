//! Listening together end to end: the room player and queue (admins control, members enqueue
//! when the room allows it), positions every client computes alike, auto-advance (exactly once
//! with two instances), deleted tracks leaving the queue, and state that survives a restart.
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{
    cluster::services,
    file_bytes::wav,
    files::{file_part, post_expect, text_part},
    fixtures::{create_room, join_room},
    helpers::{
        TestApp, WsClient, WsEvent, error_code, spawn_app, spawn_app_with, spawn_with_config,
        test_config,
    },
};

const PLAYBACK: &str = "track { id title } isPlaying positionMs updatedAt startedAt endsAt \
                        serverTime currentPositionMs version changedBy { username }";

/// Uploads a `seconds`-long WAV to the room's library; the track id.
async fn room_track(app: &TestApp, token: &str, room: &str, title: &str, seconds: usize) -> String {
    let parts = [
        text_part("room_id", room),
        text_part("title", title),
        file_part(&format!("{title}.wav"), "audio/wav", wav(seconds)),
    ];
    let track = post_expect(app, token, "/music/upload", &parts, 201).await;
    track["id"].as_str().unwrap().to_string()
}

/// Runs a player mutation with its variables (declared as ID!, or Int! for `p` and `i`); the
/// whole response.
async fn player(app: &TestApp, token: &str, call: &str, vars: Value) -> Value {
    let declared: Vec<String> = vars
        .as_object()
        .unwrap()
        .keys()
        .map(|k| {
            let kind = if k == "p" || k == "i" { "Int!" } else { "ID!" };
            format!("${k}: {kind}")
        })
        .collect();
    let query = format!("mutation({}) {{ {call} }}", declared.join(", "));
    app.gql(Some(token), &query, vars).await
}

async fn play(app: &TestApp, token: &str, room: &str, track: &str, at_ms: i64) -> Value {
    let response = app
        .gql(
            Some(token),
            &format!(
                "mutation($r: ID!, $t: ID!, $p: Int!) {{ playTrack(roomId: $r, trackId: $t, positionMs: $p) {{ {PLAYBACK} }} }}"
            ),
            json!({ "r": room, "t": track, "p": at_ms }),
        )
        .await;
    assert!(response["errors"].is_null(), "{response}");
    response["data"]["playTrack"].clone()
}

/// A control without arguments (`pausePlayback`, `resumePlayback`, `skipTrack`).
async fn simple(app: &TestApp, token: &str, room: &str, name: &str) -> Value {
    app.gql(
        Some(token),
        &format!("mutation($r: ID!) {{ {name}(roomId: $r) {{ {PLAYBACK} }} }}"),
        json!({ "r": room }),
    )
    .await
}

async fn enqueue(app: &TestApp, token: &str, room: &str, track: &str) -> Value {
    app.gql(
        Some(token),
        "mutation($r: ID!, $t: ID!) { enqueueTrack(roomId: $r, trackId: $t) { id index track { id } addedBy { username } } }",
        json!({ "r": room, "t": track }),
    )
    .await
}

/// The room's `nowPlaying` and the track ids of its queue, as `token` sees them.
async fn room_state(app: &TestApp, token: &str, room: &str) -> (Value, Vec<String>) {
    let data = app
        .gql_ok(
            Some(token),
            &format!(
                "query($r: ID!) {{ room(id: $r) {{ nowPlaying {{ {PLAYBACK} }} queue {{ id index track {{ id }} }} }} }}"
            ),
            json!({ "r": room }),
        )
        .await;
    let queue = data["room"]["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["track"]["id"].as_str().unwrap().to_string())
        .collect();
    (data["room"]["nowPlaying"].clone(), queue)
}

fn millis(value: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("{value}")))
        .unwrap()
        .timestamp_millis()
}

/// A socket subscribed to `chatEvents` of `room`, selecting playback changes.
async fn watch(app: &TestApp, token: &str, room: &str) -> WsClient {
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    let ack = ws
        .init(json!({ "Authorization": format!("Bearer {token}") }))
        .await;
    assert!(matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"));
    let query = format!(
        "subscription($c: ID!) {{ chatEvents(chatId: $c) {{ __typename ... on PlaybackChanged {{ chatId reason nowPlaying {{ {PLAYBACK} }} queue {{ track {{ id }} }} changedBy {{ username }} }} }} }}"
    );
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": { "c": room } } }))
        .await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next_json().await["type"], "pong");
    // The pong proves the server read the subscribe; the resolver then checks access in the
    // database before it listens to the bus (as `live::Socket::subscribe` waits too).
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws
}

/// The next PlaybackChanged on the socket (other events skipped), waiting up to `within`.
async fn next_change(ws: &mut WsClient, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = tokio::time::timeout(left, ws.next_json())
            .await
            .expect("a PlaybackChanged arrives");
        assert_eq!(message["type"], "next", "{message}");
        let event = &message["payload"]["data"]["chatEvents"];
        if event["__typename"] == "PlaybackChanged" {
            return event.clone();
        }
    }
}

/// Waits until `check` holds for the room's state, polling.
async fn until(app: &TestApp, token: &str, room: &str, check: impl Fn(&Value, &[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (now, queue) = room_state(app, token, room).await;
        if check(&now, &queue) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "state never came: {now} {queue:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn room_admins_control_the_player_and_members_enqueue_when_allowed() {
    let (app, _dir) = spawn_app().await;
    let owner = app.register("deejay").await;
    let member = app.register("listener").await;
    let stranger = app.register("passerby").await;
    let room = create_room(&app, &owner.token, "radio", false).await;
    join_room(&app, &member.token, &room).await;
    let first = room_track(&app, &owner.token, &room, "first", 30).await;
    let second = room_track(&app, &owner.token, &room, "second", 20).await;

    // Members and strangers may not drive the player.
    for (token, who) in [(&member.token, "member"), (&stranger.token, "stranger")] {
        let response = player(
            &app,
            token,
            "playTrack(roomId: $r, trackId: $t) { isPlaying }",
            json!({ "r": room, "t": first }),
        )
        .await;
        assert_eq!(error_code(&response), "FORBIDDEN", "{who}: {response}");
        assert_eq!(
            error_code(&simple(&app, token, &room, "pausePlayback").await),
            "FORBIDDEN"
        );
    }
    let (now, queue) = room_state(&app, &member.token, &room).await;
    assert!(now.is_null() && queue.is_empty(), "nothing played: {now}");
    // Nothing to pause yet.
    let response = simple(&app, &owner.token, &room, "pausePlayback").await;
    assert_eq!(error_code(&response), "CONFLICT", "{response}");

    let playing = play(&app, &owner.token, &room, &first, 5_000).await;
    assert_eq!(playing["track"]["id"], first.as_str());
    assert_eq!(playing["isPlaying"], true);
    assert_eq!(playing["positionMs"], 5_000);
    assert_eq!(playing["changedBy"]["username"], "deejay");
    assert_eq!(
        millis(&playing["endsAt"]) - millis(&playing["updatedAt"]),
        25_000,
        "a 30 s track from 5 s ends 25 s later: {playing}"
    );

    let paused = simple(&app, &owner.token, &room, "pausePlayback").await;
    let paused = &paused["data"]["pausePlayback"];
    assert_eq!(paused["isPlaying"], false);
    assert!(paused["endsAt"].is_null() && paused["startedAt"].is_null());
    let held = paused["positionMs"].as_i64().unwrap();
    assert!(held >= 5_000, "{paused}");
    // Pausing again changes nothing (same version).
    let again = simple(&app, &owner.token, &room, "pausePlayback").await;
    assert_eq!(again["data"]["pausePlayback"]["version"], paused["version"]);
    let (now, _) = room_state(&app, &member.token, &room).await;
    assert_eq!(now["positionMs"], held, "paused: the position holds");
    assert_eq!(now["currentPositionMs"], held);

    let seek = player(
        &app,
        &owner.token,
        "seekPlayback(roomId: $r, positionMs: $p) { positionMs isPlaying }",
        json!({ "r": room, "p": 12_000 }),
    )
    .await;
    assert_eq!(
        seek["data"]["seekPlayback"],
        json!({ "positionMs": 12_000, "isPlaying": false })
    );
    let beyond = player(
        &app,
        &owner.token,
        "seekPlayback(roomId: $r, positionMs: $p) { positionMs }",
        json!({ "r": room, "p": 31_000 }),
    )
    .await;
    assert_eq!(error_code(&beyond), "BAD_USER_INPUT", "{beyond}");
    let resumed = simple(&app, &owner.token, &room, "resumePlayback").await;
    assert_eq!(resumed["data"]["resumePlayback"]["isPlaying"], true);
    assert_eq!(resumed["data"]["resumePlayback"]["positionMs"], 12_000);

    // Enqueueing: admins only, until the room opens its queue to members.
    assert_eq!(
        error_code(&enqueue(&app, &member.token, &room, &second).await),
        "FORBIDDEN"
    );
    assert_eq!(
        error_code(&enqueue(&app, &stranger.token, &room, &second).await),
        "FORBIDDEN"
    );
    let opened = app
        .gql(
            Some(&member.token),
            "mutation($r: ID!) { updateGroup(chatId: $r, input: { anyoneCanEnqueue: true }) { anyoneCanEnqueue } }",
            json!({ "r": room }),
        )
        .await;
    assert_eq!(
        error_code(&opened),
        "FORBIDDEN",
        "members cannot change the setting"
    );
    let opened = app
        .gql_ok(
            Some(&owner.token),
            "mutation($r: ID!) { updateGroup(chatId: $r, input: { anyoneCanEnqueue: true }) { anyoneCanEnqueue } }",
            json!({ "r": room }),
        )
        .await;
    assert_eq!(opened["updateGroup"]["anyoneCanEnqueue"], true);
    let mine = enqueue(&app, &member.token, &room, &second).await;
    let mine = &mine["data"]["enqueueTrack"];
    assert_eq!(mine["index"], 0);
    assert_eq!(mine["addedBy"]["username"], "listener");
    let theirs = enqueue(&app, &owner.token, &room, &first).await;
    let theirs = &theirs["data"]["enqueueTrack"];
    assert_eq!(theirs["index"], 1);
    // A track of another room (or none) cannot be queued here.
    let other_room = create_room(&app, &owner.token, "elsewhere", false).await;
    let foreign = room_track(&app, &owner.token, &other_room, "foreign", 5).await;
    assert_eq!(
        error_code(&enqueue(&app, &owner.token, &room, &foreign).await),
        "NOT_FOUND"
    );

    // Members remove only what they added; admins reorder.
    let remove = |token: String, entry: Value| {
        let app = &app;
        let room = room.clone();
        async move {
            player(
                app,
                &token,
                "removeFromQueue(roomId: $r, entryId: $e)",
                json!({ "r": room, "e": entry }),
            )
            .await
        }
    };
    assert_eq!(
        error_code(&remove(member.token.clone(), theirs["id"].clone()).await),
        "FORBIDDEN"
    );
    let moved = player(
        &app,
        &owner.token,
        "moveInQueue(roomId: $r, entryId: $e, index: $i) { index track { id } }",
        json!({ "r": room, "e": theirs["id"], "i": 0 }),
    )
    .await;
    let order: Vec<&str> = moved["data"]["moveInQueue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["track"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, [first.as_str(), second.as_str()], "{moved}");
    let removed = remove(member.token.clone(), mine["id"].clone()).await;
    assert_eq!(removed["data"]["removeFromQueue"], true, "{removed}");
    let (_, queue) = room_state(&app, &member.token, &room).await;
    assert_eq!(queue, [first.as_str()]);

    // Skip plays the queue's head; skipping with an empty queue stops the room.
    let skipped = simple(&app, &owner.token, &room, "skipTrack").await;
    assert_eq!(skipped["data"]["skipTrack"]["track"]["id"], first.as_str());
    assert_eq!(skipped["data"]["skipTrack"]["positionMs"], 0);
    let stopped = simple(&app, &owner.token, &room, "skipTrack").await;
    assert!(stopped["data"]["skipTrack"].is_null(), "{stopped}");
    let (now, queue) = room_state(&app, &member.token, &room).await;
    assert!(now.is_null() && queue.is_empty(), "{now} {queue:?}");
    // Groups have no player.
    let group = crate::fixtures::create_group(&app, &owner.token, "band", &[]).await;
    let response = simple(&app, &owner.token, &group, "skipTrack").await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
}

#[tokio::test]
async fn a_late_joiner_computes_the_same_position_as_everyone() {
    let (app, _dir) = spawn_app().await;
    let owner = app.register("host").await;
    let early = app.register("early").await;
    let late = app.register("late").await;
    let room = create_room(&app, &owner.token, "sync", false).await;
    join_room(&app, &early.token, &room).await;
    let track = room_track(&app, &owner.token, &room, "long", 60).await;
    let mut events = watch(&app, &early.token, &room).await;

    let played = play(&app, &owner.token, &room, &track, 7_000).await;
    let event = next_change(&mut events, Duration::from_secs(5)).await;
    assert_eq!(event["reason"], "PLAYED");
    assert_eq!(event["changedBy"]["username"], "host");
    let (seen_early, _) = room_state(&app, &early.token, &room).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    join_room(&app, &late.token, &room).await;
    let (seen_late, _) = room_state(&app, &late.token, &room).await;

    // One stored state: the same anchor for everyone, from the mutation, the event, the query.
    let started = millis(&played["startedAt"]);
    for seen in [&event["nowPlaying"], &seen_early, &seen_late] {
        assert_eq!(millis(&seen["startedAt"]), started, "{seen}");
        assert_eq!(seen["positionMs"], 7_000);
        assert_eq!(seen["updatedAt"], played["updatedAt"]);
        // Each client's position is its server time minus the shared start.
        assert_eq!(
            seen["currentPositionMs"].as_i64().unwrap(),
            millis(&seen["serverTime"]) - started,
            "{seen}"
        );
    }
    assert_eq!(started, millis(&played["updatedAt"]) - 7_000);
    let later = seen_late["currentPositionMs"].as_i64().unwrap();
    let earlier = seen_early["currentPositionMs"].as_i64().unwrap();
    assert!(later >= earlier + 300, "{earlier} then {later}");

    // serverTime answers anyone signed in, close to what the playback reports.
    let clock = app
        .gql_ok(Some(&late.token), "{ serverTime }", json!({}))
        .await;
    assert!(millis(&clock["serverTime"]) >= millis(&seen_late["serverTime"]));
}

#[tokio::test]
async fn playback_advances_by_itself_and_deleted_tracks_leave_the_queue() {
    let (app, _dir) = spawn_app_with(|c| c.playback_tick_ms = 50).await;
    let owner = app.register("auto").await;
    let room = create_room(&app, &owner.token, "autoplay", false).await;
    let short = room_track(&app, &owner.token, &room, "short", 1).await;
    let next = room_track(&app, &owner.token, &room, "next", 1).await;
    let long = room_track(&app, &owner.token, &room, "long", 40).await;
    let after = room_track(&app, &owner.token, &room, "after", 40).await;
    let queued = room_track(&app, &owner.token, &room, "queued", 40).await;
    for track in [&next, &long, &after, &queued] {
        let response = enqueue(&app, &owner.token, &room, track).await;
        assert!(response["errors"].is_null(), "{response}");
    }
    let mut events = watch(&app, &owner.token, &room).await;
    let played = play(&app, &owner.token, &room, &short, 0).await;
    assert_eq!(
        next_change(&mut events, Duration::from_secs(5)).await["reason"],
        "PLAYED"
    );

    // The short track ends: the next starts where it ended (not when the sweep noticed).
    let advanced = next_change(&mut events, Duration::from_secs(10)).await;
    assert_eq!(advanced["reason"], "ADVANCED", "{advanced}");
    assert!(advanced["changedBy"].is_null());
    assert_eq!(advanced["nowPlaying"]["track"]["id"], next.as_str());
    assert_eq!(
        millis(&advanced["nowPlaying"]["startedAt"]),
        millis(&played["endsAt"]),
        "{advanced}"
    );
    let advanced = next_change(&mut events, Duration::from_secs(10)).await;
    assert_eq!(advanced["nowPlaying"]["track"]["id"], long.as_str());
    let queue: Vec<&str> = advanced["queue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["track"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(queue, [after.as_str(), queued.as_str()]);

    // Deleting a queued track takes it out of the queue, with an event.
    let delete = "mutation($id: ID!) { deleteTrack(id: $id) }";
    app.gql_ok(Some(&owner.token), delete, json!({ "id": queued }))
        .await;
    let change = next_change(&mut events, Duration::from_secs(5)).await;
    assert_eq!(change["reason"], "QUEUE_CHANGED");
    assert_eq!(change["nowPlaying"]["track"]["id"], long.as_str());
    assert_eq!(change["queue"], json!([{ "track": { "id": after } }]));
    // Deleting the playing track starts the queue's next one.
    app.gql_ok(Some(&owner.token), delete, json!({ "id": long }))
        .await;
    let change = next_change(&mut events, Duration::from_secs(5)).await;
    assert_eq!(change["reason"], "TRACK_REMOVED");
    assert_eq!(change["nowPlaying"]["track"]["id"], after.as_str());
    assert_eq!(change["nowPlaying"]["positionMs"], 0);
    assert_eq!(change["queue"], json!([]));
    // And with the queue empty, a deleted playing track leaves the room silent.
    app.gql_ok(Some(&owner.token), delete, json!({ "id": after }))
        .await;
    let change = next_change(&mut events, Duration::from_secs(5)).await;
    assert_eq!(change["reason"], "TRACK_REMOVED");
    assert!(change["nowPlaying"].is_null(), "{change}");

    // A track that ends with nothing queued: the room stops by itself.
    play(&app, &owner.token, &room, &short, 500).await;
    assert_eq!(
        next_change(&mut events, Duration::from_secs(5)).await["reason"],
        "PLAYED"
    );
    let ended = next_change(&mut events, Duration::from_secs(10)).await;
    assert_eq!(ended["reason"], "ENDED", "{ended}");
    assert!(ended["nowPlaying"].is_null());
}

/// Two instances on one database: a track's end is advanced by exactly one of them.
#[tokio::test]
async fn two_instances_advance_a_room_exactly_once() {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = test_config(dirs.0.path()).await;
    config_a.playback_tick_ms = 20;
    if let Some(redis) = services() {
        config_a.redis_url = Some(redis);
    }
    let mut config_b = config_a.clone();
    config_b.data_dir = dirs.1.path().to_path_buf();
    let a = spawn_with_config(config_a).await;
    let b = spawn_with_config(config_b).await;
    let owner = a.register("twin").await;
    let room = create_room(&a, &owner.token, "twins", false).await;
    let short = room_track(&a, &owner.token, &room, "short", 1).await;
    let second = room_track(&a, &owner.token, &room, "second", 30).await;
    let third = room_track(&a, &owner.token, &room, "third", 30).await;
    for track in [&second, &third] {
        enqueue(&b, &owner.token, &room, track).await;
    }
    let mut events = watch(&a, &owner.token, &room).await;
    let played = play(&b, &owner.token, &room, &short, 0).await;
    let version = played["version"].as_i64().unwrap();

    until(&a, &owner.token, &room, |now, _| {
        now["track"]["id"] == second.as_str()
    })
    .await;
    // Many more sweeps of both instances pass; the room stays advanced once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for app in [&a, &b] {
        let (now, queue) = room_state(app, &owner.token, &room).await;
        assert_eq!(now["track"]["id"], second.as_str(), "{now}");
        assert_eq!(now["version"], version + 1, "one advance: {now}");
        assert_eq!(queue, [third.as_str()]);
    }
    // Subscribers (with Redis, on either instance's events) hear of it once.
    let mut advances = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(300), events.next()).await {
            Ok(WsEvent::Json(message)) => {
                let event = &message["payload"]["data"]["chatEvents"];
                if event["reason"] == "ADVANCED" {
                    advances += 1;
                }
            }
            Ok(WsEvent::Closed(..)) => panic!("socket closed"),
            Err(_) => break,
        }
    }
    if a.state.config.redis_url.is_some() {
        assert_eq!(advances, 1);
    } else {
        assert!(advances <= 1, "{advances}");
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_player_and_queue_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(dir.path()).await;
    let app = spawn_with_config(config.clone()).await;
    let owner = app.register("keeper").await;
    let room = create_room(&app, &owner.token, "lasting", false).await;
    let first = room_track(&app, &owner.token, &room, "first", 60).await;
    let second = room_track(&app, &owner.token, &room, "second", 60).await;
    enqueue(&app, &owner.token, &room, &second).await;
    play(&app, &owner.token, &room, &first, 3_000).await;
    let (before, queue_before) = room_state(&app, &owner.token, &room).await;
    app.stop().await;

    let app = spawn_with_config(config).await;
    let (after, queue_after) = room_state(&app, &owner.token, &room).await;
    for key in [
        "track",
        "isPlaying",
        "positionMs",
        "updatedAt",
        "startedAt",
        "endsAt",
        "version",
    ] {
        assert_eq!(before[key], after[key], "{key}: {before} / {after}");
    }
    assert_eq!(queue_before, queue_after);
    assert_eq!(queue_after, [second]);
    app.stop().await;
}
