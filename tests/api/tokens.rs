//! Tokens that must be refused: expired, tampered, signed elsewhere, malformed, revoked.
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::helpers::{error_code, error_message, spawn_app};

const ME: &str = "{ me { id } }";

fn claims_from(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("expiring").await;
    // Same session, same secret, but the expiry is in the past.
    let mut claims = claims_from(&user.token);
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 5);
    let expired = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(app.jwt_secret.as_bytes()),
    )
    .unwrap();
    let response = app.gql(Some(&expired), ME, json!({})).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert_eq!(error_message(&response), "token expired");
    // The genuine token of that session still works: only expiry differed.
    assert!(app.gql(Some(&user.token), ME, json!({})).await["errors"].is_null());
}

#[tokio::test]
async fn tampered_or_foreign_tokens_are_rejected() {
    let (app, _dir) = spawn_app().await;
    let victim = app.register("victim").await;
    let attacker = app.register("attacker").await;

    // Attacker swaps the subject in their own token's payload, keeping their signature.
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims = claims_from(&attacker.token);
    claims["sub"] = json!(victim.id);
    let parts: Vec<&str> = attacker.token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(claims.to_string()),
        parts[2]
    );

    // A token signed with another secret.
    let foreign = jsonwebtoken::encode(
        &Header::default(),
        &claims_from(&victim.token),
        &EncodingKey::from_secret(b"some-other-secret-that-is-long-enough"),
    )
    .unwrap();
    // A flipped signature character.
    let mut flipped = victim.token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });

    for token in [
        forged.as_str(),
        foreign.as_str(),
        flipped.as_str(),
        "garbage",
        "a.b.c",
    ] {
        let response = app.gql(Some(token), ME, json!({})).await;
        assert_eq!(
            error_code(&response),
            "UNAUTHENTICATED",
            "{token}: {response}"
        );
        assert_eq!(error_message(&response), "invalid token");
    }
}

#[tokio::test]
async fn malformed_authorization_header_is_rejected() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("header").await;
    for header in [
        format!("Token {}", user.token),
        "Bearer".to_string(),
        user.token.clone(),
    ] {
        let response: serde_json::Value = app
            .client
            .post(format!("{}/graphql", app.address))
            .header("Authorization", header)
            .json(&json!({ "query": ME }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{response}");
    }
    // The scheme is case-insensitive.
    let response: serde_json::Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Authorization", format!("bearer {}", user.token))
        .json(&json!({ "query": ME }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(response["errors"].is_null(), "{response}");
}

#[tokio::test]
async fn a_revoked_token_is_refused_even_with_a_valid_signature() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("revoked").await;
    app.gql_ok(Some(&user.token), "mutation { logout }", json!({}))
        .await;
    let response = app.gql(Some(&user.token), ME, json!({})).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert_eq!(error_message(&response), "token revoked or expired");
    // Logging out twice is refused too, not silently accepted.
    let again = app
        .gql(Some(&user.token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(error_code(&again), "UNAUTHENTICATED");
}
