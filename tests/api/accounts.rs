//! Accounts end to end: register, login, me, logout, duplicates, privacy, profile, password,
//! user lookup and search.
use serde_json::json;

use crate::helpers::{PASSWORD, error_code, error_field, error_message, spawn_app};

const ME: &str = "{ me { id username email fullName displayName } }";

#[tokio::test]
async fn register_login_me_logout_round_trip() {
    let (app, _dir) = spawn_app().await;
    let data = app
        .gql_ok(
            None,
            "mutation { register(input: {username: \"Sara\", email: \"Sara@Example.com\", password: \"correct horse battery\", fullName: \"Sara Ahmadi\"}) { accessToken tokenType expiresAt user { id username email displayName } } }",
            json!({}),
        )
        .await;
    let payload = &data["register"];
    assert_eq!(payload["tokenType"], "bearer");
    assert_eq!(payload["user"]["username"], "Sara");
    assert_eq!(
        payload["user"]["email"], "sara@example.com",
        "email is stored lower-cased"
    );
    assert_eq!(payload["user"]["displayName"], "Sara Ahmadi");
    let expires: chrono::DateTime<chrono::Utc> =
        payload["expiresAt"].as_str().unwrap().parse().unwrap();
    let hours = (expires - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!(
        (23.9..=24.0).contains(&hours),
        "default lifetime is 24 h, got {hours} h"
    );
    let token = payload["accessToken"].as_str().unwrap();

    let me = app.gql_ok(Some(token), ME, json!({})).await;
    assert_eq!(me["me"]["id"], payload["user"]["id"]);

    // Login by username in another case, and by email in another case.
    for login in ["sara", "SARA@example.COM"] {
        let response = app.login(login, PASSWORD).await;
        assert_eq!(
            response["data"]["login"]["user"]["username"], "Sara",
            "login {login}: {response}"
        );
    }
    let second = app.login_token("sara").await;

    let out = app
        .gql_ok(Some(token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out["logout"], true);
    let after = app.gql(Some(token), ME, json!({})).await;
    assert_eq!(error_code(&after), "UNAUTHENTICATED");
    assert!(after["data"].is_null());
    // Logging out revokes only that token.
    let still = app.gql_ok(Some(&second), ME, json!({})).await;
    assert_eq!(still["me"]["username"], "Sara");
}

#[tokio::test]
async fn wrong_credentials_get_one_generic_error() {
    let (app, _dir) = spawn_app().await;
    app.register("dariush").await;
    let mut messages = Vec::new();
    for (login, password) in [
        ("dariush", "wrong password!"),
        ("nobody", PASSWORD),
        ("nobody@example.com", PASSWORD),
        ("dariush@example.com", "wrong password!"),
    ] {
        let response = app.login(login, password).await;
        assert_eq!(
            error_code(&response),
            "UNAUTHENTICATED",
            "{login}: {response}"
        );
        messages.push(error_message(&response).to_string());
    }
    messages.dedup();
    assert_eq!(messages, vec!["invalid login or password".to_string()]);
}

#[tokio::test]
async fn duplicate_username_or_email_is_a_conflict_naming_the_field() {
    let (app, _dir) = spawn_app().await;
    app.register("bijan").await;
    let register = "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";
    let cases = [
        ("BIJAN", "other@example.com", "username"),
        ("someone", "Bijan@EXAMPLE.com", "email"),
    ];
    for (username, email, field) in cases {
        let response = app
            .gql(
                None,
                register,
                json!({ "input": { "username": username, "email": email, "password": PASSWORD } }),
            )
            .await;
        assert_eq!(error_code(&response), "CONFLICT", "{response}");
        assert_eq!(error_field(&response), Some(field));
        assert!(error_message(&response).contains(field), "{response}");
    }
    // Nothing half-written: the refused registrations cannot log in.
    assert_eq!(
        error_code(&app.login("someone", PASSWORD).await),
        "UNAUTHENTICATED"
    );
}

#[tokio::test]
async fn email_is_visible_only_to_its_owner_and_staff() {
    let (app, _dir) = spawn_app().await;
    let owner = app.register("owner1").await;
    let other = app.register("other1").await;
    let staff = app.register("staff1").await;
    goftgu::domain::accounts::set_staff(&app.state, "staff1", true)
        .await
        .unwrap();

    let query = "query($id: ID!) { user(id: $id) { username email } }";
    let vars = json!({ "id": owner.id });
    let as_owner = app.gql_ok(Some(&owner.token), query, vars.clone()).await;
    assert_eq!(as_owner["user"]["email"], owner.email.as_str());
    assert_eq!(as_owner["user"]["username"], owner.username.as_str());
    let as_other = app.gql_ok(Some(&other.token), query, vars.clone()).await;
    assert!(as_other["user"]["email"].is_null(), "{as_other}");
    let as_staff = app.gql_ok(Some(&staff.token), query, vars).await;
    assert_eq!(as_staff["user"]["email"], "owner1@example.com");

    let search = app
        .gql_ok(
            Some(&other.token),
            "{ users(search: \"owner1\") { nodes { email } } }",
            json!({}),
        )
        .await;
    assert!(search["users"]["nodes"][0]["email"].is_null(), "{search}");
}

#[tokio::test]
async fn update_profile_changes_fields_and_refuses_taken_names() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("mina").await;
    app.register("taken").await;
    let update = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { username email fullName displayName bio } }";

    let changed = app
        .gql_ok(
            Some(&user.token),
            update,
            json!({ "input": { "username": "Mina_R", "fullName": "  Mina Rad ", "bio": "hello", "email": "MINA.R@example.org" } }),
        )
        .await;
    assert_eq!(
        changed["updateProfile"],
        json!({ "username": "Mina_R", "email": "mina.r@example.org", "fullName": "Mina Rad", "displayName": "Mina Rad", "bio": "hello" })
    );
    // An empty full name clears it; the display name falls back to the username.
    let cleared = app
        .gql_ok(
            Some(&user.token),
            update,
            json!({ "input": { "fullName": "" } }),
        )
        .await;
    assert!(cleared["updateProfile"]["fullName"].is_null());
    assert_eq!(cleared["updateProfile"]["displayName"], "Mina_R");
    assert_eq!(
        cleared["updateProfile"]["bio"], "hello",
        "omitted fields stay"
    );

    let taken = app
        .gql(
            Some(&user.token),
            update,
            json!({ "input": { "username": "TAKEN" } }),
        )
        .await;
    assert_eq!(error_code(&taken), "CONFLICT");
    assert_eq!(error_field(&taken), Some("username"));
    let taken = app
        .gql(
            Some(&user.token),
            update,
            json!({ "input": { "email": "taken@example.com" } }),
        )
        .await;
    assert_eq!(error_field(&taken), Some("email"));
    // Keeping one's own username (in another case) is not a conflict.
    let own = app
        .gql_ok(
            Some(&user.token),
            update,
            json!({ "input": { "username": "mina_r" } }),
        )
        .await;
    assert_eq!(own["updateProfile"]["username"], "mina_r");
    // The new login name works.
    assert!(app.login("mina.r@example.org", PASSWORD).await["errors"].is_null());
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_revokes_other_sessions() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("kian").await;
    let other_session = app.login_token("kian").await;
    let change = "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";

    let wrong = app
        .gql(Some(&user.token), change, json!({ "input": { "currentPassword": "not it at all", "newPassword": "brand new secret" } }))
        .await;
    assert_eq!(error_code(&wrong), "BAD_USER_INPUT");
    assert_eq!(error_field(&wrong), Some("currentPassword"));
    let short = app
        .gql(
            Some(&user.token),
            change,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": "short" } }),
        )
        .await;
    assert_eq!(error_field(&short), Some("newPassword"));
    // Still untouched after the refusals.
    assert!(app.gql(Some(&other_session), ME, json!({})).await["errors"].is_null());

    let ok = app
        .gql_ok(
            Some(&user.token),
            change,
            json!({ "input": { "currentPassword": PASSWORD, "newPassword": "brand new secret" } }),
        )
        .await;
    assert_eq!(ok["changePassword"], true);
    assert!(
        app.gql(Some(&user.token), ME, json!({})).await["errors"].is_null(),
        "current session stays"
    );
    assert_eq!(
        error_code(&app.gql(Some(&other_session), ME, json!({})).await),
        "UNAUTHENTICATED"
    );
    assert_eq!(
        error_code(&app.login("kian", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    assert!(app.login("kian", "brand new secret").await["errors"].is_null());
}

#[tokio::test]
async fn user_by_id_handles_unknown_and_malformed_ids() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("roya").await;
    let query = "query($id: ID!) { user(id: $id) { id username } }";
    let found = app
        .gql_ok(Some(&user.token), query, json!({ "id": user.id }))
        .await;
    assert_eq!(found["user"]["username"], "roya");
    let unknown = app
        .gql(
            Some(&user.token),
            query,
            json!({ "id": uuid::Uuid::new_v4().to_string() }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
    let malformed = app
        .gql(Some(&user.token), query, json!({ "id": "not-a-uuid" }))
        .await;
    assert_eq!(error_code(&malformed), "BAD_USER_INPUT");
    assert_eq!(error_field(&malformed), Some("id"));
}

#[tokio::test]
async fn users_search_matches_names_and_exact_email_and_pages() {
    let (app, _dir) = spawn_app().await;
    let me = app.register("searcher").await;
    for name in ["alice", "alina", "albert", "bob_al", "zed"] {
        app.register(name).await;
    }
    app.gql_ok(
        Some(&me.token),
        "mutation { updateProfile(input: {fullName: \"Kamran ALAVI\"}) { id } }",
        json!({}),
    )
    .await;
    let search = "query($s: String, $first: Int, $after: String) { users(search: $s, first: $first, after: $after) { nodes { username } pageInfo { hasNextPage endCursor } } }";
    let names = |data: &serde_json::Value| -> Vec<String> {
        data["users"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["username"].as_str().unwrap().to_string())
            .collect()
    };

    let al = app
        .gql_ok(Some(&me.token), search, json!({ "s": "AL" }))
        .await;
    assert_eq!(
        names(&al),
        ["albert", "alice", "alina", "bob_al", "searcher"],
        "username or full name, any case"
    );
    let total = app
        .gql_ok(
            Some(&me.token),
            "{ users(search: \"al\", first: 1) { totalCount hasMore } }",
            json!({}),
        )
        .await;
    assert_eq!(total["users"], json!({ "totalCount": 5, "hasMore": true }));
    let by_email = app
        .gql_ok(Some(&me.token), search, json!({ "s": "zed@example.com" }))
        .await;
    assert_eq!(names(&by_email), ["zed"]);
    let partial_email = app
        .gql_ok(Some(&me.token), search, json!({ "s": "@example.com" }))
        .await;
    assert!(
        names(&partial_email).is_empty(),
        "emails are not substring-matched"
    );
    let wildcard = app
        .gql_ok(Some(&me.token), search, json!({ "s": "%" }))
        .await;
    assert!(names(&wildcard).is_empty(), "LIKE wildcards are literal");
    let underscore = app
        .gql_ok(Some(&me.token), search, json!({ "s": "b_a" }))
        .await;
    assert_eq!(names(&underscore), ["bob_al"], "`_` matches only itself");

    let page1 = app
        .gql_ok(Some(&me.token), search, json!({ "s": "al", "first": 2 }))
        .await;
    assert_eq!(names(&page1), ["albert", "alice"]);
    assert_eq!(page1["users"]["pageInfo"]["hasNextPage"], true);
    let cursor = page1["users"]["pageInfo"]["endCursor"].clone();
    let page2 = app
        .gql_ok(
            Some(&me.token),
            search,
            json!({ "s": "al", "first": 2, "after": cursor }),
        )
        .await;
    assert_eq!(names(&page2), ["alina", "bob_al"]);
    let page3 = app
        .gql_ok(
            Some(&me.token),
            search,
            json!({ "s": "al", "first": 2, "after": page2["users"]["pageInfo"]["endCursor"] }),
        )
        .await;
    assert_eq!(names(&page3), ["searcher"]);
    assert_eq!(page3["users"]["pageInfo"]["hasNextPage"], false);

    for first in [0, 21, -1] {
        let response = app
            .gql(
                Some(&me.token),
                search,
                json!({ "s": "al", "first": first }),
            )
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "first {first}");
        assert_eq!(error_field(&response), Some("first"));
    }
    let bad_cursor = app
        .gql(Some(&me.token), search, json!({ "after": "%%%" }))
        .await;
    assert_eq!(error_field(&bad_cursor), Some("after"));
}

#[tokio::test]
async fn repeated_login_attempts_are_rate_limited_per_name() {
    let (app, _dir) = spawn_app().await;
    app.register("guarded").await;
    app.register("bystander").await;
    let allowed = app.state.config.login_attempts_per_minute;
    for attempt in 0..allowed {
        let response = app.login("guarded", "not the password").await;
        assert_eq!(
            error_code(&response),
            "UNAUTHENTICATED",
            "attempt {attempt}"
        );
    }
    // Over the limit even the right password is refused for now, with its own code.
    let limited = app.login("GUARDED", PASSWORD).await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    // Other names are not affected.
    assert!(app.login("bystander", PASSWORD).await["errors"].is_null());
}
