//! Rate limits: each limit, set small here, is reached and answers `RATE_LIMITED` with
//! `extensions.retryAfter` (GraphQL) or `429` with `Retry-After` (REST); sends allow their burst
//! first; registrations and logins are counted per client address, which comes from
//! `X-Forwarded-For` only behind a trusted proxy; with PostgreSQL and Redis two instances spend
//! from one budget, and without Redis each instance still limits on its own.
use serde_json::{Value, json};

use crate::{
    cluster::{PrivateRedis, services},
    file_bytes::png,
    files::{file_part, gql_multipart, named_file_part, post_parts},
    fixtures::{create_group, create_room, id, send},
    helpers::{PASSWORD, TestApp, error_code, spawn_app_with, spawn_with_config, test_config},
};

const SEND: &str =
    "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, content: $t}) { id } }";

/// Asserts a GraphQL refusal by a rate limit and returns its `retryAfter`.
fn assert_limited(response: &Value, what: &str) -> u64 {
    assert_eq!(error_code(response), "RATE_LIMITED", "{what}: {response}");
    let retry_after = response["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: no retryAfter in {response}"));
    assert!(
        (1..=60).contains(&retry_after),
        "{what}: retryAfter {retry_after} (one action a minute refills within 60 s)"
    );
    retry_after
}

fn assert_ok(response: &Value, what: &str) {
    assert!(response["errors"].is_null(), "{what}: {response}");
}

/// Asserts a REST refusal: 429, a `Retry-After` of whole seconds, and `{"detail": …}`.
async fn assert_429(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 429, "{what}");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no Retry-After header"));
    assert!((1..=60).contains(&retry_after), "{what}: {retry_after}");
    let body: Value = response.json().await.expect("JSON body");
    assert!(body["detail"].is_string(), "{what}: {body}");
}

async fn send_text(app: &TestApp, token: &str, chat: &str, text: &str) -> Value {
    app.gql(Some(token), SEND, json!({ "c": chat, "t": text }))
        .await
}

/// `register` with an `X-Forwarded-For` header (when given).
async fn register_via(app: &TestApp, name: &str, forwarded: Option<&str>) -> Value {
    let mut request = app.client.post(format!("{}/graphql", app.address)).json(&json!({
        "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
        "variables": { "i": { "username": name, "email": format!("{name}@example.com"), "password": PASSWORD } },
    }));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn sends_pass_a_burst_then_wait_per_user_and_forwards_count_per_target() {
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.send_per_minute = 1;
        c.limits.send_burst = 3;
    })
    .await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Burst", &["ben"]).await;
    let other = create_group(&app, &ana.token, "Other", &["ben"]).await;
    let first = send(&app, &ana.token, &group, "one").await;
    let third = create_group(&app, &ana.token, "Third", &[]).await;
    // Two left: a forward to two chats is two messages, to three is too many.
    let three = json!({ "m": first, "t": [group, other, third] });
    let forward =
        "mutation($m: ID!, $t: [ID!]!) { forwardMessage(messageId: $m, targetChatIds: $t) }";
    assert_limited(
        &app.gql(Some(&ana.token), forward, three).await,
        "forward to 3",
    );
    let two = json!({ "m": first, "t": [group, other] });
    assert_ok(
        &app.gql(Some(&ana.token), forward, two).await,
        "forward to 2",
    );
    let refused = send_text(&app, &ana.token, &group, "four").await;
    assert_limited(&refused, "send over the burst");
    // The refused message was not stored.
    let history = app
        .gql_ok(
            Some(&ana.token),
            "query($c: ID!) { messages(chatId: $c) { totalCount } }",
            json!({ "c": group }),
        )
        .await;
    assert_eq!(
        history["messages"]["totalCount"], 2,
        "one sent, one forwarded"
    );
    // REST file messages are messages too.
    let path = format!("/api/chats/{group}/messages/file");
    let response = post_parts(
        &app,
        &ana.token,
        &path,
        &[file_part("a.png", "image/png", png(256))],
    )
    .await;
    assert_429(response, "file message over the send limit").await;
    // Per user: Ben still has his own budget.
    assert_ok(
        &send_text(&app, &ben.token, &group, "mine").await,
        "another user",
    );
}

#[tokio::test]
async fn reactions_and_typing_are_limited_per_user() {
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.reactions_per_minute = 1;
        c.limits.reactions_burst = 2;
        c.limits.typing_per_minute = 1;
        c.limits.typing_burst = 2;
    })
    .await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Chat", &[]).await;
    let message = send(&app, &ana.token, &group, "react to me").await;
    let react = "mutation($m: ID!) { toggleReaction(messageId: $m, emoji: \"👍\") { id } }";
    for attempt in 0..2 {
        let ok = app
            .gql(Some(&ana.token), react, json!({ "m": message }))
            .await;
        assert_ok(&ok, &format!("reaction {attempt}"));
    }
    assert_limited(
        &app.gql(Some(&ana.token), react, json!({ "m": message }))
            .await,
        "third reaction",
    );
    let typing = "mutation($c: ID!, $on: Boolean!) { setTyping(chatId: $c, isTyping: $on) }";
    for on in [true, false] {
        let ok = app
            .gql(Some(&ana.token), typing, json!({ "c": group, "on": on }))
            .await;
        assert_ok(&ok, "typing toggle");
    }
    let refused = app
        .gql(Some(&ana.token), typing, json!({ "c": group, "on": true }))
        .await;
    assert_limited(&refused, "third typing toggle");
}

#[tokio::test]
async fn uploads_share_one_budget_across_rest_and_graphql() {
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.uploads_per_minute = 1;
        c.limits.uploads_burst = 2;
    })
    .await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let upload = |token: String| {
        let app = &app;
        async move {
            post_parts(
                app,
                &token,
                "/api/upload",
                &[file_part("a.png", "image/png", png(256))],
            )
            .await
        }
    };
    assert_eq!(upload(ana.token.clone()).await.status(), 201);
    let graphql = gql_multipart(
        &app,
        &ana.token,
        json!({ "query": "mutation($f: Upload!){ uploadFile(file: $f){ id } }", "variables": { "f": null } }),
        json!({ "0": ["variables.f"] }),
        vec![named_file_part("0", "b.png", "image/png", png(256))],
    )
    .await;
    assert_ok(&graphql, "second upload, through GraphQL");
    assert_429(upload(ana.token.clone()).await, "third upload").await;
    let avatar = post_parts(
        &app,
        &ana.token,
        "/api/users/me/profile-image",
        &[file_part("me.png", "image/png", png(256))],
    )
    .await;
    assert_429(avatar, "profile image over the limit").await;
    let graphql_avatar = gql_multipart(
        &app,
        &ana.token,
        json!({ "query": "mutation($f: Upload!){ uploadAvatar(file: $f){ id } }", "variables": { "f": null } }),
        json!({ "0": ["variables.f"] }),
        vec![named_file_part("0", "me.png", "image/png", png(256))],
    )
    .await;
    assert_limited(&graphql_avatar, "uploadAvatar over the limit");
    assert_eq!(upload(ben.token.clone()).await.status(), 201, "per user");
}

#[tokio::test]
async fn invitations_are_limited_per_user() {
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.invites_per_minute = 1;
        c.limits.invites_burst = 2;
    })
    .await;
    let ana = app.register("ana").await;
    for name in ["ben", "cyrus", "dana"] {
        app.register(name).await;
    }
    let room = create_room(&app, &ana.token, "Den", true).await;
    let group = create_group(&app, &ana.token, "Crew", &[]).await;
    let invite = "mutation($r: ID!, $w: [String!]!) { inviteToRoom(roomId: $r, identifiers: $w) }";
    let add = "mutation($c: ID!, $w: [String!]!) { addMembers(chatId: $c, identifiers: $w) }";
    assert_ok(
        &app.gql(Some(&ana.token), invite, json!({ "r": room, "w": ["ben"] }))
            .await,
        "invite",
    );
    assert_ok(
        &app.gql(Some(&ana.token), add, json!({ "c": group, "w": ["cyrus"] }))
            .await,
        "add",
    );
    assert_limited(
        &app.gql(Some(&ana.token), add, json!({ "c": group, "w": ["dana"] }))
            .await,
        "third invitation",
    );
    assert_limited(
        &app.gql(
            Some(&ana.token),
            invite,
            json!({ "r": room, "w": ["dana"] }),
        )
        .await,
        "fourth invitation",
    );
    // A new group that brings people along invites them too; one without members does not.
    let create =
        "mutation($w: [String!]!) { createGroup(input: {name: \"Pals\", members: $w}) { id } }";
    assert_limited(
        &app.gql(Some(&ana.token), create, json!({ "w": ["ben"] }))
            .await,
        "a group created with members",
    );
    assert_ok(
        &app.gql(Some(&ana.token), create, json!({ "w": [] })).await,
        "a group created alone",
    );
}

#[tokio::test]
async fn registrations_and_logins_are_limited_per_address() {
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.register_per_minute = 1;
        c.limits.register_burst = 2;
        c.limits.login_per_minute = 1;
        c.limits.login_burst = 3;
    })
    .await;
    // A form filled in wrong costs nothing.
    let invalid = app
        .gql(
            None,
            "mutation { register(input: {username: \"x\", email: \"nope\", password: \"short\"}) { accessToken } }",
            json!({}),
        )
        .await;
    assert_eq!(error_code(&invalid), "BAD_USER_INPUT");
    app.register("ana").await;
    app.register("ben").await;
    assert_limited(
        &register_via(&app, "cyrus", None).await,
        "third registration",
    );

    // Logins: three attempts from this address (any names), then even a right password waits.
    for name in ["nobody", "ana", "someone"] {
        assert_eq!(
            error_code(&app.login(name, "wrong password").await),
            "UNAUTHENTICATED"
        );
    }
    assert_limited(
        &app.login("ben", PASSWORD).await,
        "fourth login from one address",
    );
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_a_trusted_proxy() {
    // Behind a trusted proxy (this test's client is 127.0.0.1): each forwarded client has its
    // own budget, and what a client writes left of the proxy's entry changes nothing.
    let (proxied, _dir) = spawn_app_with(|c| {
        c.limits.register_per_minute = 1;
        c.limits.register_burst = 1;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    assert_ok(
        &register_via(&proxied, "ana", Some("203.0.113.1")).await,
        "first client",
    );
    assert_ok(
        &register_via(&proxied, "ben", Some("203.0.113.2")).await,
        "second client",
    );
    let spoofed = register_via(&proxied, "cyrus", Some("198.51.100.7, 203.0.113.1")).await;
    assert_limited(
        &spoofed,
        "first client again, with a spoofed left-hand address",
    );
    // Through two proxies (the inner one trusted too), the client is found past both.
    let proxied_twice = register_via(&proxied, "dana", Some("203.0.113.2, 127.0.0.1")).await;
    assert_limited(&proxied_twice, "second client through two proxies");
    assert_ok(
        &register_via(&proxied, "eve", None).await,
        "the proxy itself",
    );

    // No trusted proxy: the header is the client's own claim and is ignored.
    let (direct, _dir) = spawn_app_with(|c| {
        c.limits.register_per_minute = 1;
        c.limits.register_burst = 1;
    })
    .await;
    assert_ok(
        &register_via(&direct, "ana", Some("203.0.113.1")).await,
        "first",
    );
    let spoofed = register_via(&direct, "ben", Some("203.0.113.2")).await;
    assert_limited(&spoofed, "a spoofed header from an untrusted peer");
}

#[tokio::test]
async fn mutations_over_the_websocket_spend_the_same_budget() {
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.send_per_minute = 1;
        c.limits.send_burst = 1;
    })
    .await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Socket", &[]).await;
    send(&app, &ana.token, &group, "over HTTP").await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ws.init(json!({ "Authorization": format!("Bearer {}", ana.token) }))
        .await;
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": SEND, "variables": { "c": group, "t": "over the socket" } } })).await;
    let answer = ws.next_json().await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_limited(&answer["payload"], "send over the socket");
}

#[tokio::test]
async fn two_instances_spend_from_one_budget_through_redis() {
    let Some(redis_url) = services() else { return };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = test_config(dir_a.path()).await;
    config_a.redis_url = Some(redis_url);
    config_a.limits.send_per_minute = 1;
    config_a.limits.send_burst = 2;
    config_a.limits.register_per_minute = 1;
    config_a.limits.register_burst = 3;
    let mut config_b = config_a.clone();
    config_b.data_dir = dir_b.path().to_path_buf();
    let a = spawn_with_config(config_a).await;
    let b = spawn_with_config(config_b).await;

    let ana = a.register("ana").await;
    a.register("ben").await;
    let group = create_group(&a, &ana.token, "Shared", &["ben"]).await;
    send(&a, &ana.token, &group, "one").await;
    send(&a, &ana.token, &group, "two").await;
    // Ana's token works on B (same secret and database); her budget is spent there too.
    assert_limited(
        &send_text(&b, &ana.token, &group, "three").await,
        "send on B",
    );
    // The address spent two registrations on A; one is left, on B.
    b.register("cyrus").await;
    assert_limited(&register_via(&b, "dana", None).await, "registration on B");
    assert_limited(&register_via(&a, "dana", None).await, "and on A");
}

#[tokio::test]
async fn without_redis_each_instance_still_limits_and_answers() {
    if services().is_none() {
        return;
    }
    let port = crate::helpers::free_port();
    let mut redis = PrivateRedis::start(port);
    redis.wait_ready().await;
    let (app, _dir) = spawn_app_with(|c| {
        c.redis_url = Some(redis.url());
        c.limits.send_per_minute = 1;
        c.limits.send_burst = 2;
    })
    .await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "Outage", &[]).await;
    send(&app, &ana.token, &group, "shared budget").await;
    redis.stop();
    // The instance's own budget takes over (full, as it was not used while Redis answered).
    for text in ["local one", "local two"] {
        assert_ok(&send_text(&app, &ana.token, &group, text).await, text);
    }
    assert_limited(
        &send_text(&app, &ana.token, &group, "local three").await,
        "local limit",
    );
    let stored = app
        .gql_ok(
            Some(&ana.token),
            "query($c: ID!) { messages(chatId: $c) { nodes { id } } }",
            json!({ "c": group }),
        )
        .await;
    let ids: Vec<String> = stored["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(id)
        .collect();
    assert_eq!(ids.len(), 3);
}
