//! Voice in rooms: seats and their state, the cap (VOICE_FULL, also under concurrent joins),
//! admins' mute and removal, leaving the room leaves voice, the signal relay (only between
//! seated participants, bounded, delivered to the addressee alone), voice events in
//! `chatEvents` and `myEvents`, the grace period after the last socket closes, `iceServers`
//! with coturn's shared-secret credentials and, on PostgreSQL + Redis, a signal and the grace
//! period across two instances.
use std::time::Instant;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

use crate::cluster::services;
use crate::fixtures::{assert_bad_input, create_group, create_room, join_room, promote, strings};
use crate::helpers::{
    TestApp, TestUser, error_code, error_message, spawn_app, spawn_app_with, spawn_with_config,
    test_config,
};
use crate::live::{LEGACY, MODERN, MY_EVENTS, Socket};

const PARTICIPANT: &str =
    "user { id } isMuted isDeafened isSpeaking handRaised mutedByAdmin joinedAt";

const SIGNALS: &str = "subscription($room: ID!) { voiceSignals(roomId: $room) { roomId from { id username } fromUserId kind payload } }";

const VOICE_EVENTS: &str = "subscription($chatId: ID!) { chatEvents(chatId: $chatId) { __typename
    ... on VoiceJoined { chatId user { id } participant { user { id } isMuted mutedByAdmin } }
    ... on VoiceLeft { chatId user { id } }
    ... on VoiceStateChanged { chatId participant { user { id } isMuted isDeafened isSpeaking handRaised mutedByAdmin } } } }";

/// Events a voice test may pass over while it waits for a voice event.
const OTHER_EVENTS: &[&str] = &["MemberJoined", "MemberLeft", "MemberRoleChanged"];

async fn join_voice(app: &TestApp, user: &TestUser, room: &str) -> Value {
    app.gql(
        Some(&user.token),
        &format!("mutation($room: ID!) {{ joinVoice(roomId: $room) {{ {PARTICIPANT} }} }}"),
        json!({ "room": room }),
    )
    .await
}

async fn join_voice_ok(app: &TestApp, user: &TestUser, room: &str) -> Value {
    let response = join_voice(app, user, room).await;
    assert!(response.get("errors").is_none(), "{response}");
    response["data"]["joinVoice"].clone()
}

async fn leave_voice(app: &TestApp, user: &TestUser, room: &str) -> Value {
    app.gql_ok(
        Some(&user.token),
        "mutation($room: ID!) { leaveVoice(roomId: $room) }",
        json!({ "room": room }),
    )
    .await["leaveVoice"]
        .clone()
}

async fn set_state(app: &TestApp, user: &TestUser, room: &str, input: Value) -> Value {
    app.gql(
        Some(&user.token),
        &format!(
            "mutation($room: ID!, $input: VoiceStateInput!) {{ setVoiceState(roomId: $room, input: $input) {{ {PARTICIPANT} }} }}"
        ),
        json!({ "room": room, "input": input }),
    )
    .await
}

async fn mute(app: &TestApp, admin: &TestUser, room: &str, user: &TestUser, muted: bool) -> Value {
    app.gql(
        Some(&admin.token),
        &format!(
            "mutation($room: ID!, $user: ID!, $muted: Boolean!) {{ muteVoiceParticipant(roomId: $room, userId: $user, muted: $muted) {{ {PARTICIPANT} }} }}"
        ),
        json!({ "room": room, "user": user.id, "muted": muted }),
    )
    .await
}

async fn remove(app: &TestApp, admin: &TestUser, room: &str, user: &TestUser) -> Value {
    app.gql(
        Some(&admin.token),
        "mutation($room: ID!, $user: ID!) { removeFromVoice(roomId: $room, userId: $user) }",
        json!({ "room": room, "user": user.id }),
    )
    .await
}

async fn signal(
    app: &TestApp,
    from: &TestUser,
    room: &str,
    to: &str,
    kind: &str,
    payload: &str,
) -> Value {
    app.gql(
        Some(&from.token),
        "mutation($room: ID!, $to: ID!, $kind: SignalKind!, $payload: String!) { sendSignal(roomId: $room, toUserId: $to, kind: $kind, payload: $payload) }",
        json!({ "room": room, "to": to, "kind": kind, "payload": payload }),
    )
    .await
}

/// Ids of the room's voice participants as `viewer` sees them, in joining order.
async fn participants(app: &TestApp, viewer: &TestUser, room: &str) -> Vec<String> {
    let data = app
        .gql_ok(
            Some(&viewer.token),
            "query($id: ID!) { chat(id: $id) { voiceParticipants { user { id } } } }",
            json!({ "id": room }),
        )
        .await;
    strings(&data["chat"]["voiceParticipants"], "user/id")
}

/// A room owned by `owner` that every one of `members` joined.
async fn room_with(app: &TestApp, owner: &TestUser, members: &[&TestUser]) -> String {
    let room = create_room(app, &owner.token, "Lounge", false).await;
    for member in members {
        join_room(app, &member.token, &room).await;
    }
    room
}

/// The next voice event on `socket`'s subscription `id`, passing over membership events.
async fn voice_event(socket: &mut Socket, id: &str, typename: &str) -> Value {
    socket.event_of_type(id, typename, OTHER_EVENTS).await
}

#[tokio::test]
async fn members_join_and_leave_a_rooms_voice_and_set_their_state() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let eve = app.register("eve").await;
    let room = room_with(&app, &ana, &[&ben]).await;

    let seat = join_voice_ok(&app, &ben, &room).await;
    assert_eq!(seat["user"]["id"], ben.id);
    for flag in [
        "isMuted",
        "isDeafened",
        "isSpeaking",
        "handRaised",
        "mutedByAdmin",
    ] {
        assert_eq!(seat[flag], false, "{flag}: {seat}");
    }
    // Joining again returns the same seat.
    assert_eq!(join_voice_ok(&app, &ben, &room).await, seat);
    join_voice_ok(&app, &ana, &room).await;
    assert_eq!(
        participants(&app, &ana, &room).await,
        [ben.id.as_str(), ana.id.as_str()]
    );
    // Anyone who may read a public room sees who is in its voice.
    assert_eq!(
        participants(&app, &eve, &room).await,
        [ben.id.as_str(), ana.id.as_str()]
    );

    let changed = set_state(
        &app,
        &ben,
        &room,
        json!({ "isMuted": true, "handRaised": true }),
    )
    .await;
    let changed = &changed["data"]["setVoiceState"];
    assert_eq!(
        (
            &changed["isMuted"],
            &changed["handRaised"],
            &changed["isDeafened"]
        ),
        (&json!(true), &json!(true), &json!(false)),
        "{changed}"
    );
    let changed = set_state(
        &app,
        &ben,
        &room,
        json!({ "isDeafened": true, "isSpeaking": true }),
    )
    .await;
    let changed = &changed["data"]["setVoiceState"];
    assert_eq!(
        [
            &changed["isMuted"],
            &changed["isDeafened"],
            &changed["isSpeaking"],
            &changed["handRaised"]
        ],
        [&json!(true); 4],
        "omitted fields stay as they are: {changed}"
    );
    assert_eq!(changed["joinedAt"], seat["joinedAt"]);

    assert_eq!(leave_voice(&app, &ben, &room).await, true);
    assert_eq!(leave_voice(&app, &ben, &room).await, false, "no seat left");
    assert_eq!(participants(&app, &ana, &room).await, [ana.id.as_str()]);
    let response = set_state(&app, &ben, &room, json!({ "isMuted": false })).await;
    assert_eq!(error_code(&response), "FORBIDDEN", "{response}");
    assert!(error_message(&response).contains("join"), "{response}");
}

#[tokio::test]
async fn only_room_members_join_voice_and_only_in_rooms() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let eve = app.register("eve").await;
    let public = create_room(&app, &ana.token, "Open", false).await;
    let private = create_room(&app, &ana.token, "Closed", true).await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;

    // Not a member of a public room: told to join it first.
    let response = join_voice(&app, &eve, &public).await;
    assert_eq!(error_code(&response), "FORBIDDEN", "{response}");
    // A private room a stranger cannot see does not exist for them.
    let response = join_voice(&app, &eve, &private).await;
    assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
    // Groups have no voice.
    let response = join_voice(&app, &ben, &group).await;
    assert_bad_input(&response, Some("roomId"));
    assert!(error_message(&response).contains("rooms"), "{response}");
    // Unknown and malformed ids.
    let response = join_voice(&app, &ben, &uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
    assert_bad_input(&join_voice(&app, &ben, "nope").await, Some("roomId"));
    // Signed-in users only.
    let response = app
        .gql(
            None,
            "mutation($room: ID!) { joinVoice(roomId: $room) { joinedAt } }",
            json!({ "room": public }),
        )
        .await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED", "{response}");
    assert_eq!(
        participants(&app, &ana, &public).await,
        Vec::<String>::new()
    );
    // Groups list no voice participants.
    assert_eq!(participants(&app, &ana, &group).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_full_rooms_voice_answers_voice_full_even_under_concurrent_joins() {
    let (app, _dir) = spawn_app_with(|config| config.voice.max_participants = 2).await;
    let owner = app.register("owner").await;
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(app.register(&format!("user{i}")).await);
    }
    let members: Vec<&TestUser> = people.iter().collect();
    let room = room_with(&app, &owner, &members).await;

    join_voice_ok(&app, &people[0], &room).await;
    join_voice_ok(&app, &people[1], &room).await;
    let response = join_voice(&app, &people[2], &room).await;
    assert_eq!(error_code(&response), "VOICE_FULL", "{response}");
    assert!(error_message(&response).contains("full"), "{response}");
    // A participant joining again still gets their seat.
    join_voice_ok(&app, &people[1], &room).await;

    // One seat frees up; four join at once: exactly one gets it.
    assert_eq!(leave_voice(&app, &people[0], &room).await, true);
    let joins = people[2..]
        .iter()
        .map(|person| join_voice(&app, person, &room));
    let answers = futures_util::future::join_all(joins).await;
    let seated = answers.iter().filter(|a| a.get("errors").is_none()).count();
    let full = answers
        .iter()
        .filter(|a| a.get("errors").is_some() && error_code(a) == "VOICE_FULL")
        .count();
    assert_eq!((seated, full), (1, 3), "{answers:?}");
    assert_eq!(participants(&app, &owner, &room).await.len(), 2);
}

#[tokio::test]
async fn admins_mute_for_everyone_and_remove_from_voice() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await; // owner
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await; // admin
    let room = room_with(&app, &ana, &[&ben, &cyd]).await;
    promote(&app, &ana.token, &room, &cyd.id).await;
    for user in [&ana, &ben, &cyd] {
        join_voice_ok(&app, user, &room).await;
    }

    let muted = mute(&app, &cyd, &room, &ben, true).await;
    let muted = &muted["data"]["muteVoiceParticipant"];
    assert_eq!(
        (&muted["isMuted"], &muted["mutedByAdmin"]),
        (&json!(true), &json!(true)),
        "{muted}"
    );
    // Ben cannot unmute himself, but may do everything else.
    let response = set_state(&app, &ben, &room, json!({ "isMuted": false })).await;
    assert_eq!(error_code(&response), "FORBIDDEN", "{response}");
    assert!(error_message(&response).contains("admin"), "{response}");
    let response = set_state(&app, &ben, &room, json!({ "handRaised": true })).await;
    assert_eq!(
        response["data"]["setVoiceState"]["handRaised"], true,
        "{response}"
    );
    // Lifted: his own mute stays on until he turns it off.
    let lifted = mute(&app, &cyd, &room, &ben, false).await;
    let lifted = &lifted["data"]["muteVoiceParticipant"];
    assert_eq!(
        (&lifted["isMuted"], &lifted["mutedByAdmin"]),
        (&json!(true), &json!(false)),
        "{lifted}"
    );
    let response = set_state(&app, &ben, &room, json!({ "isMuted": false })).await;
    assert_eq!(
        response["data"]["setVoiceState"]["isMuted"], false,
        "{response}"
    );

    // A plain member has no admin controls.
    for response in [
        mute(&app, &ben, &room, &cyd, true).await,
        remove(&app, &ben, &room, &cyd).await,
    ] {
        assert_eq!(error_code(&response), "FORBIDDEN", "{response}");
    }
    // The owner is out of an admin's reach; an admin is only in the owner's.
    for response in [
        mute(&app, &cyd, &room, &ana, true).await,
        remove(&app, &cyd, &room, &ana).await,
    ] {
        assert_eq!(error_code(&response), "FORBIDDEN", "{response}");
    }
    let response = mute(&app, &ana, &room, &cyd, true).await;
    assert_eq!(
        response["data"]["muteVoiceParticipant"]["mutedByAdmin"], true,
        "{response}"
    );

    // Removal frees the seat; removing again finds none; muting someone not in voice is refused.
    let response = remove(&app, &cyd, &room, &ben).await;
    assert_eq!(response["data"]["removeFromVoice"], true, "{response}");
    assert_eq!(
        participants(&app, &ana, &room).await,
        [ana.id.as_str(), cyd.id.as_str()]
    );
    let response = remove(&app, &cyd, &room, &ben).await;
    assert_eq!(response["data"]["removeFromVoice"], false, "{response}");
    let response = mute(&app, &cyd, &room, &ben, true).await;
    assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
    // A removed participant may join again (removing them from the room keeps them out).
    join_voice_ok(&app, &ben, &room).await;
}

#[tokio::test]
async fn a_member_muted_in_the_room_joins_voice_muted_by_an_admin() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let room = room_with(&app, &ana, &[&ben]).await;
    app.gql_ok(
        Some(&ana.token),
        "mutation($c: ID!, $u: ID!) { muteMember(chatId: $c, userId: $u, muted: true) }",
        json!({ "c": room, "u": ben.id }),
    )
    .await;
    let seat = join_voice_ok(&app, &ben, &room).await;
    assert_eq!(
        (&seat["isMuted"], &seat["mutedByAdmin"]),
        (&json!(true), &json!(true)),
        "{seat}"
    );
}

#[tokio::test]
async fn voice_events_reach_the_room_and_leaving_the_room_leaves_voice() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let room = room_with(&app, &ana, &[&ben, &cyd]).await;
    let mut chat = Socket::open(&app, &ana.token, MODERN).await;
    chat.subscribe("chat", VOICE_EVENTS, json!({ "chatId": room }))
        .await;
    let mut mine = Socket::open(&app, &ana.token, LEGACY).await;
    mine.subscribe("mine", MY_EVENTS, json!({})).await;

    join_voice_ok(&app, &ben, &room).await;
    let joined = voice_event(&mut chat, "chat", "VoiceJoined").await;
    assert_eq!(joined["chatId"], room);
    assert_eq!(joined["user"]["id"], ben.id);
    assert_eq!(joined["participant"]["user"]["id"], ben.id);
    // myEvents carries them too (it selects only the type names of voice events).
    assert_eq!(mine.event("mine").await["__typename"], "VoiceJoined");

    set_state(&app, &ben, &room, json!({ "isSpeaking": true })).await;
    let changed = voice_event(&mut chat, "chat", "VoiceStateChanged").await;
    assert_eq!(changed["participant"]["isSpeaking"], true, "{changed}");
    assert_eq!(changed["participant"]["user"]["id"], ben.id);
    assert_eq!(mine.event("mine").await["__typename"], "VoiceStateChanged");
    // Nothing changed, nothing announced.
    set_state(&app, &ben, &room, json!({ "isSpeaking": true })).await;
    chat.expect_quiet().await;

    leave_voice(&app, &ben, &room).await;
    let left = voice_event(&mut chat, "chat", "VoiceLeft").await;
    assert_eq!(
        (&left["chatId"], &left["user"]["id"]),
        (&json!(room), &json!(ben.id))
    );
    assert_eq!(mine.event("mine").await["__typename"], "VoiceLeft");

    // Leaving the room gives up the seat, announced before the member leaves.
    join_voice_ok(&app, &ben, &room).await;
    voice_event(&mut chat, "chat", "VoiceJoined").await;
    app.gql_ok(
        Some(&ben.token),
        "mutation($id: ID!) { leaveRoom(roomId: $id) }",
        json!({ "id": room }),
    )
    .await;
    let left = chat.event("chat").await;
    assert_eq!(
        (&left["__typename"], &left["user"]["id"]),
        (&json!("VoiceLeft"), &json!(ben.id)),
        "{left}"
    );
    assert_eq!(chat.event("chat").await["__typename"], "MemberLeft");
    // So does being removed from it.
    join_voice_ok(&app, &cyd, &room).await;
    voice_event(&mut chat, "chat", "VoiceJoined").await;
    app.gql_ok(
        Some(&ana.token),
        "mutation($c: ID!, $u: ID!) { removeMember(chatId: $c, userId: $u) }",
        json!({ "c": room, "u": cyd.id }),
    )
    .await;
    let left = chat.event("chat").await;
    assert_eq!(
        (&left["__typename"], &left["user"]["id"]),
        (&json!("VoiceLeft"), &json!(cyd.id)),
        "{left}"
    );
    assert_eq!(participants(&app, &ana, &room).await, Vec::<String>::new());
}

#[tokio::test]
async fn signals_are_relayed_to_the_addressee_only() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let room = room_with(&app, &ana, &[&ben, &cyd]).await;
    let other_room = room_with(&app, &ana, &[&ben]).await;
    // Everyone listens before joining (so no offer is missed), one protocol each way.
    let mut sockets = Vec::new();
    for (user, protocol) in [(&ana, MODERN), (&ben, LEGACY), (&cyd, MODERN)] {
        let mut socket = Socket::open(&app, &user.token, protocol).await;
        socket
            .subscribe("sig", SIGNALS, json!({ "room": room }))
            .await;
        sockets.push(socket);
        join_voice_ok(&app, user, &room).await;
    }
    // Ben also listens in another room, which must not hear this room's signals.
    sockets[1]
        .subscribe("other", SIGNALS, json!({ "room": other_room }))
        .await;

    let offer = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n";
    let response = signal(&app, &ana, &room, &ben.id, "OFFER", offer).await;
    assert_eq!(response["data"]["sendSignal"], true, "{response}");
    let received = sockets[1].event("sig").await;
    assert_eq!(
        received,
        json!({ "roomId": room, "from": { "id": ana.id, "username": "ana" }, "fromUserId": ana.id, "kind": "OFFER", "payload": offer })
    );
    // Every kind goes through, in order.
    for (kind, payload) in [
        ("ANSWER", "v=0 answer"),
        (
            "ICE_CANDIDATE",
            "{\"candidate\":\"candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\"}",
        ),
        ("BYE", ""),
    ] {
        let response = signal(&app, &ben, &room, &ana.id, kind, payload).await;
        assert_eq!(response["data"]["sendSignal"], true, "{response}");
        let received = sockets[0].event("sig").await;
        assert_eq!(
            (&received["kind"], &received["payload"]),
            (&json!(kind), &json!(payload))
        );
        assert_eq!(received["fromUserId"], ben.id);
    }
    // Nobody else heard anything: not the third participant, not the sender, not another room.
    for socket in &mut sockets {
        socket.expect_quiet().await;
    }
}

#[tokio::test]
async fn signals_outside_the_voice_session_or_too_large_are_refused() {
    let (app, _dir) = spawn_app_with(|config| config.voice.signal_max_bytes = 1000).await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let eve = app.register("eve").await;
    let room = create_room(&app, &ana.token, "Closed", true).await;
    crate::fixtures::invite(&app, &ana.token, &room, &["ben", "cyd"]).await;
    join_room(&app, &ben.token, &room).await;
    join_room(&app, &cyd.token, &room).await;
    join_voice_ok(&app, &ana, &room).await;
    join_voice_ok(&app, &ben, &room).await;

    // A stranger to the private room: it does not exist for them, to send or to listen.
    let response = signal(&app, &eve, &room, &ana.id, "OFFER", "x").await;
    assert_eq!(error_code(&response), "NOT_FOUND", "{response}");
    let mut socket = Socket::open(&app, &eve.token, MODERN).await;
    socket
        .subscribe("sig", SIGNALS, json!({ "room": room }))
        .await;
    assert_eq!(
        socket.refusal("sig").await["extensions"]["code"],
        "NOT_FOUND"
    );
    // A member without a seat cannot send.
    let response = signal(&app, &cyd, &room, &ana.id, "OFFER", "x").await;
    assert_eq!(error_code(&response), "FORBIDDEN", "{response}");
    assert!(error_message(&response).contains("voice"), "{response}");
    // To someone not in the voice session (a member without a seat, a stranger, nobody).
    for to in [
        cyd.id.clone(),
        eve.id.clone(),
        uuid::Uuid::new_v4().to_string(),
    ] {
        let response = signal(&app, &ana, &room, &to, "OFFER", "x").await;
        assert_bad_input(&response, Some("toUserId"));
        assert!(error_message(&response).contains("not in"), "{response}");
    }
    // To oneself.
    assert_bad_input(
        &signal(&app, &ana, &room, &ana.id, "OFFER", "x").await,
        Some("toUserId"),
    );
    // Too large; the limit itself passes.
    let response = signal(&app, &ana, &room, &ben.id, "OFFER", &"a".repeat(1001)).await;
    assert_bad_input(&response, Some("payload"));
    assert!(
        error_message(&response).contains("1000 bytes"),
        "{response}"
    );
    let response = signal(&app, &ana, &room, &ben.id, "OFFER", &"a".repeat(1000)).await;
    assert_eq!(response["data"]["sendSignal"], true, "{response}");
}

#[tokio::test]
async fn signals_are_rate_limited_per_user() {
    let (app, _dir) = spawn_app_with(|config| {
        config.limits.signals_burst = 3;
        config.limits.signals_per_minute = 1;
    })
    .await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let room = room_with(&app, &ana, &[&ben]).await;
    join_voice_ok(&app, &ana, &room).await;
    join_voice_ok(&app, &ben, &room).await;
    for _ in 0..3 {
        let response = signal(&app, &ana, &room, &ben.id, "ICE_CANDIDATE", "c").await;
        assert_eq!(response["data"]["sendSignal"], true, "{response}");
    }
    let response = signal(&app, &ana, &room, &ben.id, "ICE_CANDIDATE", "c").await;
    assert_eq!(error_code(&response), "RATE_LIMITED", "{response}");
    // Another user's budget is their own.
    let response = signal(&app, &ben, &room, &ana.id, "ICE_CANDIDATE", "c").await;
    assert_eq!(response["data"]["sendSignal"], true, "{response}");
}

#[tokio::test]
async fn a_participant_whose_socket_dropped_leaves_after_the_grace_and_a_reconnect_keeps_the_seat()
{
    // Two seconds: long enough for a reconnect on a busy machine, short for a test.
    let (app, _dir) = spawn_app_with(|config| config.voice.grace_seconds = 2).await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let room = room_with(&app, &ana, &[&ben, &cyd]).await;
    let mut watcher = Socket::open(&app, &ana.token, MODERN).await;
    watcher
        .subscribe("chat", VOICE_EVENTS, json!({ "chatId": room }))
        .await;
    let ben_socket = Socket::open(&app, &ben.token, MODERN).await;
    let cyd_socket = Socket::open(&app, &cyd.token, LEGACY).await;
    join_voice_ok(&app, &ben, &room).await;
    join_voice_ok(&app, &cyd, &room).await;
    voice_event(&mut watcher, "chat", "VoiceJoined").await;
    voice_event(&mut watcher, "chat", "VoiceJoined").await;

    // Both drop; Ben comes back at once, Cyd does not.
    ben_socket.close().await;
    let ben_again = Socket::open(&app, &ben.token, LEGACY).await;
    let dropped = Instant::now();
    cyd_socket.close().await;
    let left = voice_event(&mut watcher, "chat", "VoiceLeft").await;
    assert_eq!(
        left["user"]["id"], cyd.id,
        "Cyd leaves; Ben, back in time, does not: {left}"
    );
    let waited = dropped.elapsed();
    // Ben went away before Cyd, so the sweep that freed Cyd's seat would have freed his.
    assert_eq!(participants(&app, &ana, &room).await, [ben.id.as_str()]);
    eprintln!("seat freed {waited:?} after the last socket closed (grace 2 s)");

    // A seat taken over plain HTTP with no socket open lasts the grace period too.
    join_voice_ok(&app, &cyd, &room).await;
    voice_event(&mut watcher, "chat", "VoiceJoined").await;
    let left = voice_event(&mut watcher, "chat", "VoiceLeft").await;
    assert_eq!(left["user"]["id"], cyd.id);
    assert_eq!(participants(&app, &ana, &room).await, [ben.id.as_str()]);
    drop(ben_again);
}

#[tokio::test]
async fn ice_servers_carry_coturn_shared_secret_credentials() {
    let (app, _dir) = spawn_app_with(|config| {
        config.voice.stun_urls = vec!["stun:stun.example.org:3478".into()];
        config.voice.turn_urls = vec![
            "turn:turn.example.org:3478?transport=udp".into(),
            "turns:turn.example.org:5349".into(),
        ];
        config.voice.turn_secret = Some("coturn-static-auth-secret".into());
        config.voice.turn_ttl_seconds = 600;
    })
    .await;
    let ana = app.register("ana").await;
    let query = "{ iceServers { urls username credential } }";
    let before = chrono::Utc::now().timestamp();
    let data = app.gql_ok(Some(&ana.token), query, json!({})).await;
    let after = chrono::Utc::now().timestamp();
    let servers = data["iceServers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{data}");
    assert_eq!(
        servers[0],
        json!({ "urls": ["stun:stun.example.org:3478"], "username": null, "credential": null })
    );
    let turn = &servers[1];
    assert_eq!(
        turn["urls"],
        json!([
            "turn:turn.example.org:3478?transport=udp",
            "turns:turn.example.org:5349"
        ])
    );
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').unwrap();
    assert_eq!(user, ana.id);
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (before + 600..=after + 600).contains(&expiry),
        "expires in the TTL: {expiry}"
    );
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"coturn-static-auth-secret").unwrap();
    mac.update(username.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(turn["credential"], expected);

    let response = app.gql(None, query, json!({})).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED", "{response}");
}

#[tokio::test]
async fn without_a_turn_secret_only_stun_servers_are_offered() {
    let (app, _dir) = spawn_app_with(|config| {
        config.voice.stun_urls = vec!["stun:a.example.org".into(), " ".into()];
        config.voice.turn_urls = vec!["turn:turn.example.org".into()];
    })
    .await;
    let ana = app.register("ana").await;
    let data = app
        .gql_ok(
            Some(&ana.token),
            "{ iceServers { urls username credential } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["iceServers"],
        json!([{ "urls": ["stun:a.example.org"], "username": null, "credential": null }])
    );
    let (bare, _dir) = spawn_app().await;
    let ana = bare.register("ana").await;
    let data = bare
        .gql_ok(Some(&ana.token), "{ iceServers { urls } }", json!({}))
        .await;
    assert_eq!(data["iceServers"], json!([]));
}

/// Two instances on one database and one Redis; `grace_b` is instance B's grace period.
async fn spawn_pair(
    redis_url: &str,
    grace_a: u64,
    grace_b: u64,
) -> (TestApp, TestApp, Vec<tempfile::TempDir>) {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = test_config(dir_a.path()).await;
    config_a.redis_url = Some(redis_url.to_string());
    config_a.voice.grace_seconds = grace_a;
    let mut config_b = config_a.clone();
    config_b.data_dir = dir_b.path().to_path_buf();
    config_b.voice.grace_seconds = grace_b;
    let a = spawn_with_config(config_a).await;
    let b = spawn_with_config(config_b).await;
    (a, b, vec![dir_a, dir_b])
}

/// Waits until some instance subscribed to `user`'s voice channel in Redis.
async fn wait_for_voice_channel(redis_url: &str, app: &TestApp, user: &TestUser) {
    let channel = format!("{}voice:{}", app.state.config.redis_prefix, user.id);
    crate::cluster::wait_for_subscriber(redis_url, &channel).await;
}

async fn login_on(app: &TestApp, user: &TestUser) -> TestUser {
    let response = app.login(&user.username, crate::helpers::PASSWORD).await;
    TestUser {
        token: response["data"]["login"]["accessToken"]
            .as_str()
            .unwrap()
            .to_string(),
        ..user.clone()
    }
}

#[tokio::test]
async fn a_signal_sent_through_one_instance_reaches_its_addressee_on_another() {
    let Some(redis_url) = services() else { return };
    let (a, b, _dirs) = spawn_pair(&redis_url, 15, 15).await;
    let ana = a.register("ana").await;
    let ben = a.register("ben").await;
    let cyd = a.register("cyd").await;
    let room = room_with(&a, &ana, &[&ben, &cyd]).await;
    let ben_on_b = login_on(&b, &ben).await;
    let cyd_on_b = login_on(&b, &cyd).await;
    let mut bens = Socket::open(&b, &ben_on_b.token, MODERN).await;
    bens.subscribe("sig", SIGNALS, json!({ "room": room }))
        .await;
    let mut cyds = Socket::open(&b, &cyd_on_b.token, MODERN).await;
    cyds.subscribe("sig", SIGNALS, json!({ "room": room }))
        .await;
    wait_for_voice_channel(&redis_url, &b, &ben).await;
    join_voice_ok(&a, &ana, &room).await;
    join_voice_ok(&b, &ben_on_b, &room).await;
    join_voice_ok(&b, &cyd_on_b, &room).await;

    let mut latencies = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        let payload = format!("candidate {i}");
        let response = signal(&a, &ana, &room, &ben.id, "ICE_CANDIDATE", &payload).await;
        assert_eq!(response["data"]["sendSignal"], true, "{response}");
        let received = bens.event("sig").await;
        assert_eq!(
            (&received["payload"], &received["fromUserId"]),
            (&json!(payload), &json!(ana.id))
        );
        latencies.push(started.elapsed());
    }
    cyds.expect_quiet().await;
    latencies.sort();
    eprintln!(
        "cross-instance signal (send request start → received): median {:?}, max {:?}",
        latencies[2], latencies[4]
    );
}

#[tokio::test]
async fn presence_on_another_instance_keeps_the_seat_and_its_loss_frees_it() {
    let Some(redis_url) = services() else { return };
    // A sweeps with a 1 s grace; B's grace is long, so every seat freed here is A's doing.
    let (a, b, _dirs) = spawn_pair(&redis_url, 1, 3600).await;
    let ana = a.register("ana").await;
    let ben = a.register("ben").await;
    let cyd = a.register("cyd").await;
    let room = room_with(&a, &ana, &[&ben, &cyd]).await;
    let mut watcher = Socket::open(&a, &ana.token, MODERN).await;
    watcher
        .subscribe("chat", VOICE_EVENTS, json!({ "chatId": room }))
        .await;
    let ben_on_b = login_on(&b, &ben).await;
    let bens = Socket::open(&b, &ben_on_b.token, MODERN).await;
    join_voice_ok(&b, &ben_on_b, &room).await;
    voice_event(&mut watcher, "chat", "VoiceJoined").await;
    // Cyd joins with no socket anywhere: A frees that seat after the grace, and in doing so has
    // looked at Ben, who is online only on B.
    join_voice_ok(&a, &cyd, &room).await;
    voice_event(&mut watcher, "chat", "VoiceJoined").await;
    let left = voice_event(&mut watcher, "chat", "VoiceLeft").await;
    assert_eq!(left["user"]["id"], cyd.id);
    assert_eq!(participants(&a, &ana, &room).await, [ben.id.as_str()]);

    // Ben's last socket (on B) closes: A frees his seat after the grace.
    bens.close().await;
    let left = voice_event(&mut watcher, "chat", "VoiceLeft").await;
    assert_eq!(left["user"]["id"], ben.id);
    assert_eq!(participants(&a, &ana, &room).await, Vec::<String>::new());
}

#[tokio::test]
async fn voice_participants_in_a_chat_list_cost_no_statement_per_chat() {
    let (app, _dir) = spawn_app_with(crate::n_plus_one::quiet_background).await;
    let me = app.register("lister").await;
    let guests = [app.register("guest_a").await, app.register("guest_b").await];
    let list =
        "{ chats(first: 50) { nodes { id voiceParticipants { user { username } isMuted } } } }";
    let add_rooms = async |count: usize| {
        for _ in 0..count {
            let room = room_with(&app, &me, &[&guests[0], &guests[1]]).await;
            for guest in &guests {
                join_voice_ok(&app, guest, &room).await;
            }
        }
    };
    let measure = async |expected: usize| {
        let before = crate::n_plus_one::quiet_count(&app).await;
        let data = app.gql_ok(Some(&me.token), list, json!({})).await;
        let after = crate::n_plus_one::quiet_count(&app).await;
        let nodes = data["chats"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), expected);
        for node in nodes {
            assert_eq!(
                strings(&node["voiceParticipants"], "user/username"),
                ["guest_a", "guest_b"],
                "{node}"
            );
        }
        after - before
    };
    add_rooms(2).await;
    let two = measure(2).await;
    add_rooms(8).await;
    let ten = measure(10).await;
    eprintln!("chat list with voice participants: {two} statements for 2 rooms, {ten} for 10");
    assert_eq!(two, ten, "no statement per chat");
}
