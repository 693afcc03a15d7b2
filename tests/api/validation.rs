//! Every validation rule answers BAD_USER_INPUT naming the field, and nothing is written.
use serde_json::json;

use crate::helpers::{PASSWORD, error_code, error_field, spawn_app};

const REGISTER: &str =
    "mutation($input: RegisterInput!) { register(input: $input) { accessToken } }";

#[tokio::test]
async fn register_rejects_each_invalid_field() {
    let (app, _dir) = spawn_app().await;
    let long_name = "n".repeat(101);
    let long_password = "p".repeat(129);
    let long_username = format!("a{}", "b".repeat(32));
    let long_email = format!("{}@example.com", "e".repeat(250));
    let cases: Vec<(&str, &str, &str, Option<&str>, &str)> = vec![
        ("ab", "a@example.com", PASSWORD, None, "username"),
        (&long_username, "a@example.com", PASSWORD, None, "username"),
        ("has space", "a@example.com", PASSWORD, None, "username"),
        ("9lives", "a@example.com", PASSWORD, None, "username"),
        ("dash-ed", "a@example.com", PASSWORD, None, "username"),
        ("sara@home", "a@example.com", PASSWORD, None, "username"),
        ("valid_1", "not-an-email", PASSWORD, None, "email"),
        ("valid_1", "a@b", PASSWORD, None, "email"),
        ("valid_1", "a b@example.com", PASSWORD, None, "email"),
        ("valid_1", "@example.com", PASSWORD, None, "email"),
        ("valid_1", &long_email, PASSWORD, None, "email"),
        ("valid_1", "a@example.com", "short", None, "password"),
        ("valid_1", "a@example.com", &long_password, None, "password"),
        (
            "valid_1",
            "a@example.com",
            PASSWORD,
            Some(&long_name),
            "fullName",
        ),
        (
            "valid_1",
            "a@example.com",
            PASSWORD,
            Some("bad\u{7}bell"),
            "fullName",
        ),
    ];
    for (username, email, password, full_name, field) in cases {
        let response = app
            .gql(None, REGISTER, json!({ "input": { "username": username, "email": email, "password": password, "fullName": full_name } }))
            .await;
        assert_eq!(
            error_code(&response),
            "BAD_USER_INPUT",
            "{username}/{email}: {response}"
        );
        assert_eq!(
            error_field(&response),
            Some(field),
            "{username}/{email}: {response}"
        );
    }
    // None of the refused inputs created an account.
    assert_eq!(
        error_code(&app.login("valid_1", PASSWORD).await),
        "UNAUTHENTICATED"
    );
    // The boundaries themselves are accepted.
    let ok = app
        .gql(None, REGISTER, json!({ "input": { "username": "abc", "email": "x@example.com", "password": "12345678", "fullName": "n".repeat(100) } }))
        .await;
    assert!(ok["errors"].is_null(), "{ok}");
}

#[tokio::test]
async fn update_profile_rejects_each_invalid_field() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("valid_2").await;
    let update = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { id } }";
    let cases = [
        (json!({ "username": "x" }), "username"),
        (json!({ "email": "nope" }), "email"),
        (json!({ "fullName": "n".repeat(101) }), "fullName"),
        (json!({ "bio": "b".repeat(501) }), "bio"),
    ];
    for (input, field) in cases {
        let response = app
            .gql(Some(&user.token), update, json!({ "input": input }))
            .await;
        assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
        assert_eq!(error_field(&response), Some(field));
    }
    let me = app
        .gql_ok(Some(&user.token), "{ me { username bio } }", json!({}))
        .await;
    assert_eq!(me["me"], json!({ "username": "valid_2", "bio": null }));
}

#[tokio::test]
async fn framework_errors_carry_a_code_too() {
    let (app, _dir) = spawn_app().await;
    for query in [
        "{ nope }",
        "{ me { ",
        "query($id: ID!) { user(id: $id) { id } }",
        "{ users(first: \"ten\") { nodes { id } } }",
    ] {
        let response = app.gql(None, query, json!({})).await;
        assert_eq!(
            error_code(&response),
            "BAD_USER_INPUT",
            "{query}: {response}"
        );
    }
}
