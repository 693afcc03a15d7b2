//! Authentication without a statement per request: a verified session is kept in memory, and a
//! revocation (logout, password change, refresh reuse) or a change of rights is honoured on the
//! very next request, on this instance and on every other one.
use std::time::Duration;

use serde_json::json;

use crate::cluster::{services, spawn_pair_with};
use crate::fixtures::register_staff;
use crate::helpers::{PASSWORD, TestApp, error_code, spawn_app, spawn_app_with};
use crate::live::{MODERN, PRESENCE, Socket};

/// SQL statements one request costs.
async fn statements_for(app: &TestApp, token: &str, query: &str) -> u64 {
    let before = crate::n_plus_one::quiet_count(app).await;
    let answer = app.gql(Some(token), query, json!({})).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    app.state.sql_statement_count() - before
}

#[tokio::test]
async fn a_known_session_costs_no_statement_and_a_revoked_one_is_refused_at_once() {
    let (app, _dir) = spawn_app_with(crate::n_plus_one::quiet_background).await;
    let ana = app.register("ana").await;
    // The first use verifies the session against the database.
    statements_for(&app, &ana.token, "{ serverTime }").await;
    assert_eq!(
        statements_for(&app, &ana.token, "{ serverTime }").await,
        0,
        "a verified session needs no statement"
    );
    app.gql_ok(Some(&ana.token), "mutation { logout }", json!({}))
        .await;
    let answer = app.gql(Some(&ana.token), "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer}");
}

#[tokio::test]
async fn a_socket_and_its_subscription_ask_the_cache_not_the_database_for_their_session() {
    let (app, _dir) = spawn_app_with(crate::n_plus_one::quiet_background).await;
    let ana = app.register("ana").await;
    statements_for(&app, &ana.token, "{ serverTime }").await;
    let before = crate::n_plus_one::quiet_count(&app).await;
    // The handshake, the socket's watch over its session and the subscription's own check all
    // find the verified session in the cache; the one statement left loads the users watched.
    let mut socket = Socket::open(&app, &ana.token, MODERN).await;
    socket
        .subscribe("1", PRESENCE, json!({ "ids": [ana.id] }))
        .await;
    let current = socket.event_within("1", Duration::from_secs(5)).await;
    assert_eq!(current["userId"], ana.id.as_str(), "{current}");
    let spent = crate::n_plus_one::quiet_count(&app).await - before;
    assert_eq!(
        spent, 1,
        "statements for a socket and its presence subscription"
    );
    socket.close().await;
}

#[tokio::test]
async fn a_password_change_ends_the_other_cached_sessions_at_once() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let other = app.login_token("ana").await;
    app.gql_ok(Some(&other), "{ me { id } }", json!({})).await;
    app.gql_ok(
        Some(&ana.token),
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }",
        json!({ "i": { "currentPassword": PASSWORD, "newPassword": "another horse battery staple" } }),
    )
    .await;
    let answer = app.gql(Some(&other), "{ me { id } }", json!({})).await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED", "{answer}");
}

#[tokio::test]
async fn staff_rights_granted_in_process_apply_to_cached_sessions_at_once() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let sam = app.register("sam").await;
    let query = "query($id: ID!) { user(id: $id) { email } }";
    let hidden = app
        .gql_ok(Some(&sam.token), query, json!({ "id": ana.id }))
        .await;
    assert!(hidden["user"]["email"].is_null(), "{hidden}");
    goftgu::domain::accounts::set_staff(&app.state, "sam", true)
        .await
        .unwrap();
    let shown = app
        .gql_ok(Some(&sam.token), query, json!({ "id": ana.id }))
        .await;
    assert_eq!(shown["user"]["email"], ana.email.as_str(), "{shown}");
    // register_staff goes the same way.
    register_staff(&app, "root").await;
}

#[tokio::test]
async fn a_session_revoked_on_one_instance_is_refused_on_the_next_request_on_another() {
    let Some(redis) = services() else { return };
    let (a, b, _dirs) = spawn_pair_with(&redis, |c| {
        // Twenty logins of one name in a row: no limit on them here.
        c.login_attempts_per_minute = 0;
        c.limits.login_per_minute = 0;
    })
    .await;
    let ana = a.register("ana").await;
    for round in 0..20 {
        let token = a.login_token("ana").await;
        // B verifies and caches the session, twice to be sure it serves it from memory.
        b.gql_ok(Some(&token), "{ me { id } }", json!({})).await;
        b.gql_ok(Some(&token), "{ me { id } }", json!({})).await;
        a.gql_ok(Some(&token), "mutation { logout }", json!({}))
            .await;
        let answer = b.gql(Some(&token), "{ me { id } }", json!({})).await;
        assert_eq!(
            error_code(&answer),
            "UNAUTHENTICATED",
            "round {round}: B accepted a revoked token: {answer}"
        );
    }
    // The first session (from register) was never revoked.
    b.gql_ok(Some(&ana.token), "{ me { id } }", json!({})).await;
}
