//! Friends and blocks: the friend-request state machine (including two people asking each
//! other at the same moment), its events in `myEvents`, and a block applied on every path that
//! reaches a person: a direct chat (opening it, writing in it, writing to a user), a friend
//! request, a group's members, a room's invites.
use std::time::Duration;

use serde_json::{Value, json};

use crate::fixtures::{create_group, create_room, open_direct, send, strings};
use crate::helpers::{TestApp, error_code, spawn_app};
use crate::live::{MODERN, MY_EVENTS_PEOPLE, Socket};

const WAIT: Duration = Duration::from_secs(5);

async fn ask(app: &TestApp, token: &str, identifier: &str) -> Value {
    app.gql(
        Some(token),
        "mutation($who: String!) { sendFriendRequest(identifier: $who) }",
        json!({ "who": identifier }),
    )
    .await
}

/// Asks `identifier` to be friends as `token`'s user; where they stand afterwards.
pub(crate) async fn asked(app: &TestApp, token: &str, identifier: &str) -> String {
    let answer = ask(app, token, identifier).await;
    answer["data"]["sendFriendRequest"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string()
}

/// `mutation { <name>(userId: …) }` as `token`'s user: the whole answer.
async fn act(app: &TestApp, token: &str, name: &str, user_id: &str) -> Value {
    let query = format!("mutation($id: ID!) {{ {name}(userId: $id) }}");
    app.gql(Some(token), &query, json!({ "id": user_id })).await
}

/// Usernames in a list query (`friends`, `blockedUsers`) or in requests (`…FriendRequests`).
async fn names(app: &TestApp, token: &str, list: &str) -> Vec<String> {
    let (selection, key) = if list.ends_with("Requests") {
        ("{ user { username } createdAt }", "user/username")
    } else {
        ("{ username }", "username")
    };
    let data = app
        .gql_ok(Some(token), &format!("{{ {list} {selection} }}"), json!({}))
        .await;
    strings(&data[list], key)
}

#[tokio::test]
async fn a_request_is_answered_once_and_a_friendship_ends_when_either_removes_it() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;

    assert_eq!(asked(&app, &ana.token, "ben").await, "REQUEST_SENT");
    assert_eq!(
        asked(&app, &ana.token, &ben.email).await,
        "REQUEST_SENT",
        "asking again"
    );
    assert_eq!(
        names(&app, &ben.token, "incomingFriendRequests").await,
        ["ana"]
    );
    assert_eq!(
        names(&app, &ana.token, "outgoingFriendRequests").await,
        ["ben"]
    );
    assert!(
        names(&app, &ana.token, "incomingFriendRequests")
            .await
            .is_empty()
    );
    // Only the one asked may accept.
    let answer = act(&app, &ana.token, "acceptFriendRequest", &ben.id).await;
    assert_eq!(error_code(&answer), "NOT_FOUND", "{answer}");

    let answer = act(&app, &ben.token, "acceptFriendRequest", &ana.id).await;
    assert_eq!(answer["data"]["acceptFriendRequest"], "FRIENDS", "{answer}");
    assert_eq!(names(&app, &ana.token, "friends").await, ["ben"]);
    assert_eq!(names(&app, &ben.token, "friends").await, ["ana"]);
    assert!(
        names(&app, &ben.token, "incomingFriendRequests")
            .await
            .is_empty()
    );
    assert_eq!(
        asked(&app, &ben.token, "ana").await,
        "FRIENDS",
        "asking a friend"
    );
    let again = act(&app, &ben.token, "acceptFriendRequest", &ana.id).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");

    let answer = act(&app, &ben.token, "removeFriend", &ana.id).await;
    assert_eq!(answer["data"]["removeFriend"], true, "{answer}");
    assert!(names(&app, &ana.token, "friends").await.is_empty());
    let again = act(&app, &ana.token, "removeFriend", &ben.id).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");
}

#[tokio::test]
async fn a_request_can_be_declined_or_taken_back_and_bad_asks_are_refused() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;

    asked(&app, &ana.token, "ben").await;
    let answer = act(&app, &ben.token, "declineFriendRequest", &ana.id).await;
    assert_eq!(answer["data"]["declineFriendRequest"], true, "{answer}");
    assert!(
        names(&app, &ana.token, "outgoingFriendRequests")
            .await
            .is_empty()
    );
    let again = act(&app, &ben.token, "declineFriendRequest", &ana.id).await;
    assert_eq!(error_code(&again), "NOT_FOUND", "{again}");

    asked(&app, &ana.token, "ben").await;
    // The one asked cannot take it back, only decline it.
    let wrong = act(&app, &ben.token, "cancelFriendRequest", &ana.id).await;
    assert_eq!(error_code(&wrong), "NOT_FOUND", "{wrong}");
    let answer = act(&app, &ana.token, "cancelFriendRequest", &ben.id).await;
    assert_eq!(answer["data"]["cancelFriendRequest"], true, "{answer}");
    assert!(
        names(&app, &ben.token, "incomingFriendRequests")
            .await
            .is_empty()
    );
    let late = act(&app, &ben.token, "acceptFriendRequest", &ana.id).await;
    assert_eq!(error_code(&late), "NOT_FOUND", "{late}");

    let own = ask(&app, &ana.token, "ana").await;
    assert_eq!(error_code(&own), "BAD_USER_INPUT", "{own}");
    let nobody = ask(&app, &ana.token, "nobody-here").await;
    assert_eq!(error_code(&nobody), "NOT_FOUND", "{nobody}");
    let bad = act(&app, &ana.token, "acceptFriendRequest", "not-an-id").await;
    assert_eq!(error_code(&bad), "BAD_USER_INPUT", "{bad}");
}

#[tokio::test]
async fn asking_someone_who_asked_first_accepts_their_request_even_at_the_same_moment() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    asked(&app, &ana.token, "ben").await;
    assert_eq!(asked(&app, &ben.token, "ana").await, "FRIENDS");
    assert_eq!(names(&app, &ana.token, "friends").await, ["ben"]);

    for round in 0..5 {
        let x = app.register(&format!("xan{round}")).await;
        let y = app.register(&format!("yas{round}")).await;
        let (from_x, from_y) = tokio::join!(
            asked(&app, &x.token, &y.username),
            asked(&app, &y.token, &x.username)
        );
        let mut outcomes = [from_x.clone(), from_y.clone()];
        outcomes.sort();
        // One asked; the other's ask found that request and accepted it.
        assert_eq!(outcomes, ["FRIENDS", "REQUEST_SENT"], "round {round}");
        assert_eq!(
            names(&app, &x.token, "friends").await,
            [y.username.as_str()]
        );
        assert_eq!(
            names(&app, &y.token, "friends").await,
            [x.username.as_str()]
        );
        assert!(
            names(&app, &x.token, "incomingFriendRequests")
                .await
                .is_empty()
        );
        assert!(
            names(&app, &y.token, "outgoingFriendRequests")
                .await
                .is_empty()
        );
    }
}

#[tokio::test]
async fn requests_acceptances_and_removals_reach_the_other_person_live() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let mut ana_live = Socket::open(&app, &ana.token, MODERN).await;
    ana_live.subscribe("me", MY_EVENTS_PEOPLE, json!({})).await;
    let mut ben_live = Socket::open(&app, &ben.token, MODERN).await;
    ben_live.subscribe("me", MY_EVENTS_PEOPLE, json!({})).await;

    asked(&app, &ana.token, "ben").await;
    let received = people_event(&mut ben_live).await;
    assert_eq!(
        received["__typename"], "FriendRequestReceived",
        "{received}"
    );
    assert_eq!(received["user"]["id"], ana.id.as_str(), "{received}");

    act(&app, &ben.token, "acceptFriendRequest", &ana.id).await;
    let accepted = people_event(&mut ana_live).await;
    assert_eq!(
        accepted["__typename"], "FriendRequestAccepted",
        "{accepted}"
    );
    assert_eq!(accepted["user"]["username"], "ben", "{accepted}");

    act(&app, &ana.token, "removeFriend", &ben.id).await;
    let removed = people_event(&mut ben_live).await;
    assert_eq!(removed["__typename"], "FriendRemoved", "{removed}");
    assert_eq!(removed["userId"], ana.id.as_str(), "{removed}");
    ana_live.close().await;
    ben_live.close().await;
}

/// The next friend event of `myEvents` (notifications, tested on their own, are skipped).
async fn people_event(socket: &mut Socket) -> Value {
    loop {
        let event = socket.event_within("me", WAIT).await;
        if event["__typename"] != "NotificationCreated" {
            return event;
        }
    }
}

#[tokio::test]
async fn a_block_closes_every_way_to_reach_the_blocker_with_a_neutral_refusal() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let direct = open_direct(&app, &ben.token, "ana").await;
    send(&app, &ben.token, &direct, "before").await;
    let earlier = create_room(&app, &ben.token, "attic", true).await;
    crate::fixtures::invite(&app, &ben.token, &earlier, &["ana"]).await;
    asked(&app, &ben.token, "ana").await;
    act(&app, &ana.token, "acceptFriendRequest", &ben.id).await;

    let answer = act(&app, &ana.token, "blockUser", &ben.id).await;
    assert_eq!(answer["data"]["blockUser"], true, "{answer}");
    assert_eq!(names(&app, &ana.token, "blockedUsers").await, ["ben"]);
    assert!(names(&app, &ben.token, "blockedUsers").await.is_empty());
    // The block ended the friendship, and withdrew ben's earlier invitation.
    let withdrawn = app
        .gql(
            Some(&ana.token),
            "mutation($id: ID!) { joinRoom(roomId: $id) { id } }",
            json!({ "id": earlier }),
        )
        .await;
    assert_eq!(error_code(&withdrawn), "NOT_FOUND", "{withdrawn}");
    assert!(names(&app, &ana.token, "friends").await.is_empty());
    assert!(names(&app, &ben.token, "friends").await.is_empty());

    // The blocked person: refused, in words that say nothing of a block.
    let refusals = [
        app.gql(
            Some(&ben.token),
            "mutation { openDirectChat(identifier: \"ana\") { id } }",
            json!({}),
        )
        .await,
        app.gql(
            Some(&ben.token),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, content: \"hi\"}) { id } }",
            json!({ "c": direct }),
        )
        .await,
        app.gql(
            Some(&ben.token),
            "mutation($u: ID!) { sendMessage(input: {recipientId: $u, content: \"hi\"}) { id } }",
            json!({ "u": ana.id }),
        )
        .await,
        ask(&app, &ben.token, "ana").await,
    ];
    for refusal in &refusals {
        assert_eq!(error_code(refusal), "FORBIDDEN", "{refusal}");
        let message = refusal["errors"][0]["message"].as_str().unwrap();
        assert!(!message.contains("block"), "{message}");
    }
    // The blocker is told why.
    let own = app
        .gql(
            Some(&ana.token),
            "mutation($c: ID!) { sendMessage(input: {chatId: $c, content: \"hi\"}) { id } }",
            json!({ "c": direct }),
        )
        .await;
    assert_eq!(error_code(&own), "FORBIDDEN", "{own}");
    assert!(
        own["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unblock"),
        "{own}"
    );
    // The history is still there to read.
    let history = app
        .gql_ok(
            Some(&ana.token),
            "query($c: ID!) { messages(chatId: $c, first: 10) { totalCount } }",
            json!({ "c": direct }),
        )
        .await;
    assert_eq!(history["messages"]["totalCount"], 1, "{history}");

    // Groups and rooms: the blocker is passed over without a word.
    app.register("cal").await;
    let group = create_group(&app, &ben.token, "club", &["ana", "cal"]).await;
    let members = group_members(&app, &ben.token, &group).await;
    assert_eq!(members, ["ben", "cal"]);
    let added = app
        .gql_ok(
            Some(&ben.token),
            "mutation($id: ID!) { addMembers(chatId: $id, identifiers: [\"ana\"]) }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(added["addMembers"], 0, "{added}");
    let room = create_room(&app, &ben.token, "den", true).await;
    let invited = app
        .gql_ok(
            Some(&ben.token),
            "mutation($id: ID!) { inviteToRoom(roomId: $id, identifiers: [\"ana\", \"cal\"]) }",
            json!({ "id": room }),
        )
        .await;
    assert_eq!(invited["inviteToRoom"], 1, "only cal: {invited}");
    let join = app
        .gql(
            Some(&ana.token),
            "mutation($id: ID!) { joinRoom(roomId: $id) { id } }",
            json!({ "id": room }),
        )
        .await;
    assert!(join.get("errors").is_some(), "ana was not invited: {join}");
    // The blocker still brings the blocked person in when they choose to.
    let own_group = create_group(&app, &ana.token, "mine", &["ben"]).await;
    assert_eq!(
        group_members(&app, &ana.token, &own_group).await,
        ["ana", "ben"]
    );

    let lifted = act(&app, &ana.token, "unblockUser", &ben.id).await;
    assert_eq!(lifted["data"]["unblockUser"], true, "{lifted}");
    let again = act(&app, &ana.token, "unblockUser", &ben.id).await;
    assert_eq!(again["data"]["unblockUser"], false, "{again}");
    send(&app, &ben.token, &direct, "after").await;
    assert_eq!(asked(&app, &ben.token, "ana").await, "REQUEST_SENT");

    let own = act(&app, &ana.token, "blockUser", &ana.id).await;
    assert_eq!(error_code(&own), "BAD_USER_INPUT", "{own}");
    let unknown = act(
        &app,
        &ana.token,
        "blockUser",
        &uuid::Uuid::new_v4().to_string(),
    )
    .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND", "{unknown}");
}

/// Usernames of a chat's members, sorted.
async fn group_members(app: &TestApp, token: &str, chat_id: &str) -> Vec<String> {
    let chat = crate::fixtures::chat(
        app,
        token,
        chat_id,
        "members(first: 50) { nodes { user { username } } }",
    )
    .await;
    let mut names = strings(&chat["members"]["nodes"], "user/username");
    names.sort();
    names
}

#[tokio::test]
async fn a_request_made_on_one_instance_reaches_a_socket_on_another() {
    let Some(redis) = crate::cluster::services() else {
        return;
    };
    let (a, b, _dirs) = crate::cluster::spawn_pair_with(&redis, |_| {}).await;
    let ana = a.register("ana").await;
    let ben = a.register("ben").await;
    let mut ben_live = Socket::open(&b, &ben.token, MODERN).await;
    let query = "subscription { myEvents { __typename
        ... on FriendRequestReceived { user { username } }
        ... on NotificationCreated { notification { kind actor { username } } } } }";
    ben_live.subscribe("me", query, json!({})).await;
    asked(&a, &ana.token, "ben").await;
    let received = ben_live.event_within("me", WAIT).await;
    assert_eq!(
        received["__typename"], "FriendRequestReceived",
        "{received}"
    );
    assert_eq!(received["user"]["username"], "ana", "{received}");
    let noticed = ben_live.event_within("me", WAIT).await;
    assert_eq!(
        noticed["notification"]["kind"], "FRIEND_REQUEST",
        "{noticed}"
    );
    assert_eq!(
        noticed["notification"]["actor"]["username"], "ana",
        "{noticed}"
    );
    // The request is answered on the other instance.
    let answer = act(&b, &ben.token, "acceptFriendRequest", &ana.id).await;
    assert_eq!(answer["data"]["acceptFriendRequest"], "FRIENDS", "{answer}");
    assert_eq!(names(&a, &ana.token, "friends").await, ["ben"]);
    ben_live.close().await;
}
