//! Refresh tokens: `register` and `login` hand one out with the access token; `refreshToken`
//! trades it for new ones of the same session, once. A traded-in token presented again revokes
//! the whole session (every token, every socket); logout and a password change end them too.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use goftgu::entity::refresh_token;
use jsonwebtoken::{EncodingKey, Header};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{PASSWORD, TestApp, WsClient, WsEvent, error_code, error_message, spawn_app};

const ME: &str = "{ me { id } }";
const PAYLOAD: &str = "accessToken expiresAt refreshToken refreshExpiresAt user { id }";

/// Registers `name` and returns the whole `AuthPayload`.
async fn sign_up(app: &TestApp, name: &str) -> Value {
    let query =
        format!("mutation($input: RegisterInput!) {{ register(input: $input) {{ {PAYLOAD} }} }}");
    let input =
        json!({ "username": name, "email": format!("{name}@example.com"), "password": PASSWORD });
    app.gql_ok(None, &query, json!({ "input": input })).await["register"].clone()
}

/// Logs `name` in and returns the whole `AuthPayload`.
async fn log_in(app: &TestApp, name: &str) -> Value {
    let query = format!("mutation($input: LoginInput!) {{ login(input: $input) {{ {PAYLOAD} }} }}");
    let input = json!({ "login": name, "password": PASSWORD });
    app.gql_ok(None, &query, json!({ "input": input })).await["login"].clone()
}

/// `refreshToken(token)`, sent with `bearer` as the Authorization header when given; the whole
/// response.
async fn refresh(app: &TestApp, bearer: Option<&str>, token: &str) -> Value {
    let query = format!("mutation($t: String!) {{ refreshToken(token: $t) {{ {PAYLOAD} }} }}");
    app.gql(bearer, &query, json!({ "t": token })).await
}

fn text<'a>(payload: &'a Value, field: &str) -> &'a str {
    payload[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {payload}"))
}

fn time(payload: &Value, field: &str) -> chrono::DateTime<chrono::Utc> {
    text(payload, field).parse().unwrap()
}

/// Whether `access` is accepted.
async fn works(app: &TestApp, access: &str) -> bool {
    app.gql(Some(access), ME, json!({})).await["errors"].is_null()
}

/// A subscription socket of the session of `access`, acknowledged.
async fn socket(app: &TestApp, access: &str) -> WsClient {
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    let ack = ws
        .init(json!({ "Authorization": format!("Bearer {access}") }))
        .await;
    assert!(matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"));
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { myEvents { __typename } }" } }))
        .await;
    ws
}

/// Waits for the socket's close frame.
async fn closed(ws: &mut WsClient) -> (Option<u16>, String) {
    loop {
        match ws.next().await {
            WsEvent::Closed(code, reason) => return (code, reason),
            WsEvent::Json(_) => continue,
        }
    }
}

fn assert_unauthenticated(response: &Value, message: &str) {
    assert_eq!(error_code(response), "UNAUTHENTICATED", "{response}");
    assert!(
        error_message(response).contains(message),
        "`{message}` expected: {response}"
    );
    assert!(response["data"].is_null(), "{response}");
}

#[tokio::test]
async fn register_and_login_hand_out_a_refresh_token_stored_only_as_its_hash() {
    let (app, _dir) = spawn_app().await;
    let registered = sign_up(&app, "rt_hash").await;
    let logged_in = log_in(&app, "rt_hash").await;
    let mut tokens = Vec::new();
    for payload in [&registered, &logged_in] {
        let token = text(payload, "refreshToken").to_string();
        assert!(token.starts_with("goftgu_rt_"), "{token}");
        // An access token lives a day, its session 30 days unless refreshed.
        let (access_end, refresh_end) = (
            time(payload, "expiresAt"),
            time(payload, "refreshExpiresAt"),
        );
        let days = (refresh_end - chrono::Utc::now()).num_hours() as f64 / 24.0;
        assert!((29.9..=30.0).contains(&days), "{days} days");
        assert!(access_end < refresh_end);
        tokens.push(token);
    }
    assert_ne!(tokens[0], tokens[1]);

    let rows = refresh_token::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for token in &tokens {
        let secret = &token["goftgu_rt_".len()..];
        let bytes = URL_SAFE_NO_PAD.decode(secret).unwrap();
        assert_eq!(bytes.len(), 32);
        let expected = format!("{:x}", Sha256::digest(&bytes));
        let row = rows.iter().find(|r| r.token_hash == expected);
        assert!(row.is_some(), "the token's SHA-256 is its key");
        for row in &rows {
            assert!(
                !row.token_hash.contains(secret),
                "the token itself is stored"
            );
            assert!(row.replaced_at.is_none());
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn a_refresh_rotates_the_tokens_and_reusing_a_traded_in_one_revokes_the_session() {
    let (app, _dir) = spawn_app().await;
    let first = sign_up(&app, "rt_rotate").await;
    let other_session = log_in(&app, "rt_rotate").await;

    // Apollo's and urql's auth links send the expired access token along: it is ignored.
    let engine = URL_SAFE_NO_PAD;
    let access = text(&first, "accessToken");
    let mut claims: Value =
        serde_json::from_slice(&engine.decode(access.split('.').nth(1).unwrap()).unwrap()).unwrap();
    claims["exp"] = json!(chrono::Utc::now().timestamp() - 5);
    let expired = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(app.jwt_secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        error_message(&app.gql(Some(&expired), ME, json!({})).await),
        "token expired"
    );
    let response = refresh(&app, Some(&expired), text(&first, "refreshToken")).await;
    assert!(response["errors"].is_null(), "{response}");
    let second = response["data"]["refreshToken"].clone();
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    assert!(time(&second, "refreshExpiresAt") >= time(&first, "refreshExpiresAt"));
    assert!(works(&app, text(&second, "accessToken")).await);
    assert!(
        works(&app, text(&first, "accessToken")).await,
        "access tokens live out their time"
    );

    // The second pair works in turn; the first refresh token does not any more.
    let third =
        refresh(&app, None, text(&second, "refreshToken")).await["data"]["refreshToken"].clone();
    let access = text(&third, "accessToken").to_string();
    assert!(works(&app, &access).await);
    let mut ws = socket(&app, &access).await;
    let mut other_ws = socket(&app, text(&other_session, "accessToken")).await;

    // A traded-in token again (a stolen copy, or a replay): the whole session ends.
    let reuse = refresh(&app, None, text(&first, "refreshToken")).await;
    assert_unauthenticated(&reuse, "already used");
    for access in [
        text(&first, "accessToken"),
        text(&second, "accessToken"),
        access.as_str(),
    ] {
        assert!(
            !works(&app, access).await,
            "an access token of the revoked session works"
        );
    }
    assert_unauthenticated(
        &refresh(&app, None, text(&third, "refreshToken")).await,
        "revoked",
    );
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, Some(4403), "{reason}");

    // The user's other session is not touched.
    assert!(works(&app, text(&other_session, "accessToken")).await);
    other_ws.send(json!({ "type": "ping" })).await;
    assert_eq!(other_ws.next_json().await["type"], "pong");
    let response = refresh(&app, None, text(&other_session, "refreshToken")).await;
    assert!(response["errors"].is_null(), "{response}");
    app.stop().await;
}

#[tokio::test]
async fn logout_ends_the_refresh_token_and_a_password_change_those_of_other_sessions() {
    let (app, _dir) = spawn_app().await;
    let first = sign_up(&app, "rt_logout").await;
    let second = log_in(&app, "rt_logout").await;
    let third = log_in(&app, "rt_logout").await;

    app.gql_ok(
        Some(text(&first, "accessToken")),
        "mutation { logout }",
        json!({}),
    )
    .await;
    assert_unauthenticated(
        &refresh(&app, None, text(&first, "refreshToken")).await,
        "revoked",
    );

    let change = "mutation($input: ChangePasswordInput!) { changePassword(input: $input) }";
    let input = json!({ "currentPassword": PASSWORD, "newPassword": "a brand new secret" });
    app.gql_ok(
        Some(text(&second, "accessToken")),
        change,
        json!({ "input": input }),
    )
    .await;
    assert_unauthenticated(
        &refresh(&app, None, text(&third, "refreshToken")).await,
        "revoked",
    );
    // The session that changed the password keeps its refresh token.
    let response = refresh(&app, None, text(&second, "refreshToken")).await;
    assert!(response["errors"].is_null(), "{response}");
    app.stop().await;
}

#[tokio::test]
async fn unknown_and_malformed_refresh_tokens_are_refused() {
    let (app, _dir) = spawn_app().await;
    let user = sign_up(&app, "rt_unknown").await;
    let mut flipped = text(&user, "refreshToken").to_string();
    flipped.replace_range(12..13, if &flipped[12..13] == "A" { "B" } else { "A" });
    let access = text(&user, "accessToken");
    let unknown = format!("goftgu_rt_{}", URL_SAFE_NO_PAD.encode([7u8; 32]));
    for token in [
        "",
        "garbage",
        "goftgu_rt_",
        access,
        flipped.as_str(),
        unknown.as_str(),
    ] {
        assert_unauthenticated(&refresh(&app, None, token).await, "invalid refresh token");
    }
    // None of that touched the real one.
    let response = refresh(&app, None, text(&user, "refreshToken")).await;
    assert!(response["errors"].is_null(), "{response}");
    app.stop().await;
}

/// Two refreshes of one token at once: the database lets exactly one mark it replaced; the other
/// is a reuse, so the session ends and the winner's new tokens die with it. (Clients refresh one
/// token once: urql's authExchange and a shared promise in an Apollo link do.)
#[tokio::test]
async fn of_two_concurrent_refreshes_of_one_token_exactly_one_wins_and_the_session_ends() {
    let (app, _dir) = spawn_app().await;
    for round in 0..3 {
        let user = sign_up(&app, &format!("rt_race{round}")).await;
        let token = text(&user, "refreshToken");
        let (a, b) = tokio::join!(refresh(&app, None, token), refresh(&app, None, token));
        let (won, lost) = match (a["errors"].is_null(), b["errors"].is_null()) {
            (true, false) => (a, b),
            (false, true) => (b, a),
            _ => panic!("exactly one must win: {a} {b}"),
        };
        assert_eq!(error_code(&lost), "UNAUTHENTICATED", "{lost}");
        let won = &won["data"]["refreshToken"];
        assert!(!works(&app, text(won, "accessToken")).await);
        assert!(!works(&app, text(&user, "accessToken")).await);
        assert_unauthenticated(
            &refresh(&app, None, text(won, "refreshToken")).await,
            "revoked",
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused_and_access_tokens_end_with_it() {
    let (app, _dir) = crate::helpers::spawn_app_with(|c| c.refresh_ttl_seconds = 1).await;
    let user = sign_up(&app, "rt_expired").await;
    // An access token never outlives its session.
    assert_eq!(time(&user, "expiresAt"), time(&user, "refreshExpiresAt"));
    let left = time(&user, "refreshExpiresAt") - chrono::Utc::now();
    assert!(left <= chrono::Duration::seconds(1), "{left}");
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_unauthenticated(
        &refresh(&app, None, text(&user, "refreshToken")).await,
        "expired",
    );
    assert!(!works(&app, text(&user, "accessToken")).await);
    app.stop().await;
}

#[tokio::test]
async fn refreshes_are_limited_per_client_address() {
    let (app, _dir) = crate::helpers::spawn_app_with(|c| {
        c.limits.refresh_per_minute = 1;
        c.limits.refresh_burst = 2;
    })
    .await;
    let user = sign_up(&app, "rt_limited").await;
    // Guesses spend the budget as well as genuine tokens do.
    assert_unauthenticated(&refresh(&app, None, "goftgu_rt_guess").await, "invalid");
    let response = refresh(&app, None, text(&user, "refreshToken")).await;
    assert!(response["errors"].is_null(), "{response}");
    let limited = refresh(
        &app,
        None,
        text(&response["data"]["refreshToken"], "refreshToken"),
    )
    .await;
    assert_eq!(error_code(&limited), "RATE_LIMITED", "{limited}");
    app.stop().await;
}

/// A session refreshed for ever keeps only the tokens of its last lifetime: older ones would be
/// expired anyway, so they are forgotten (and presenting one is merely invalid).
#[tokio::test]
async fn a_long_lived_session_keeps_only_the_refresh_tokens_of_its_last_lifetime() {
    let (app, _dir) = crate::helpers::spawn_app_with(|c| c.refresh_ttl_seconds = 3).await;
    let user = sign_up(&app, "rt_prune").await;
    let mut tokens = vec![text(&user, "refreshToken").to_string()];
    let mut access = String::new();
    for step in 0..3 {
        if step > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
        }
        let response = refresh(&app, None, tokens.last().unwrap()).await;
        assert!(response["errors"].is_null(), "{response}");
        let payload = &response["data"]["refreshToken"];
        tokens.push(text(payload, "refreshToken").to_string());
        access = text(payload, "accessToken").to_string();
    }
    // Issued at about 0 s, 0 s, 1.6 s, 3.2 s: the first two are more than 3 s old.
    let rows = refresh_token::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_unauthenticated(
        &refresh(&app, None, &tokens[0]).await,
        "invalid refresh token",
    );
    assert!(works(&app, &access).await, "the session lives on");
    // A traded-in token of the last lifetime is still recognised as reuse.
    assert_unauthenticated(&refresh(&app, None, &tokens[2]).await, "already used");
    app.stop().await;
}
