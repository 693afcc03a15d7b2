//! The subscription socket: both protocols authenticate in `connection_init`, refuse bad tokens
//! their own way, and run a subscription to completion.
use serde_json::{Value, json};

use crate::helpers::{WsEvent, spawn_app};

const HEARTBEAT: &str = "subscription { heartbeat(intervalMs: 100, count: 2) }";

#[tokio::test]
async fn graphql_transport_ws_runs_a_subscription_to_completion() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("socket1").await;
    for path in ["/graphql/ws", "/graphql"] {
        let mut ws = app.ws(path, "graphql-transport-ws").await;
        let ack = ws
            .init(json!({ "Authorization": format!("Bearer {}", user.token) }))
            .await;
        assert!(
            matches!(&ack, WsEvent::Json(v) if v["type"] == "connection_ack"),
            "{ack:?}"
        );

        ws.send(json!({ "type": "ping" })).await;
        assert_eq!(ws.next_json().await["type"], "pong");

        ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }))
            .await;
        let mut times = Vec::new();
        for _ in 0..2 {
            let message = ws.next_json().await;
            assert_eq!(message["type"], "next", "{message}");
            assert_eq!(message["id"], "1");
            times.push(
                message["payload"]["data"]["heartbeat"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        assert!(times[0] < times[1], "clock moves forward: {times:?}");
        assert_eq!(
            ws.next_json().await,
            json!({ "id": "1", "type": "complete" })
        );
    }
}

#[tokio::test]
async fn legacy_graphql_ws_runs_a_subscription_to_completion() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("socket2").await;
    let mut ws = app.ws("/graphql/ws", "graphql-ws").await;
    let ack = ws.init(json!({ "token": user.token })).await;
    assert!(
        matches!(&ack, WsEvent::Json(v) if v["type"] == "connection_ack"),
        "{ack:?}"
    );
    ws.send(json!({ "id": "a", "type": "start", "payload": { "query": HEARTBEAT } }))
        .await;
    let mut data = 0;
    loop {
        let message = ws.next_json().await;
        match message["type"].as_str() {
            Some("ka") => continue,
            Some("data") => {
                assert!(
                    message["payload"]["data"]["heartbeat"].is_string(),
                    "{message}"
                );
                data += 1;
            }
            Some("complete") => break,
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(data, 2);
}

async fn refused_token(payload: Value, expected_reason: &str) {
    let (app, _dir) = spawn_app().await;
    let _ = app.register("socket3").await;

    let mut modern = app.ws("/graphql/ws", "graphql-transport-ws").await;
    match modern.init(payload.clone()).await {
        WsEvent::Closed(Some(4403), reason) => {
            assert!(reason.contains(expected_reason), "{reason}")
        }
        other => panic!("expected close 4403, got {other:?}"),
    }

    let mut legacy = app.ws("/graphql/ws", "graphql-ws").await;
    match legacy.init(payload).await {
        WsEvent::Json(message) => {
            assert_eq!(message["type"], "connection_error", "{message}");
            assert!(
                message["payload"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(expected_reason)
            );
        }
        other => panic!("expected connection_error, got {other:?}"),
    }
    assert!(matches!(legacy.next().await, WsEvent::Closed(..)));
}

#[tokio::test]
async fn bad_token_is_refused_by_both_protocols() {
    refused_token(
        json!({ "Authorization": "Bearer not.a.token" }),
        "invalid token",
    )
    .await;
}

#[tokio::test]
async fn missing_token_is_refused_by_both_protocols() {
    refused_token(json!({}), "authentication required").await;
}

#[tokio::test]
async fn revoked_token_is_refused_on_the_socket() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("socket4").await;
    app.gql_ok(Some(&user.token), "mutation { logout }", json!({}))
        .await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    match ws
        .init(json!({ "Authorization": format!("Bearer {}", user.token) }))
        .await
    {
        WsEvent::Closed(Some(4403), reason) => assert!(reason.contains("revoked"), "{reason}"),
        other => panic!("expected close 4403, got {other:?}"),
    }
}

#[tokio::test]
async fn subscribing_before_connection_init_is_refused() {
    let (app, _dir) = spawn_app().await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": HEARTBEAT } }))
        .await;
    assert!(matches!(ws.next().await, WsEvent::Closed(Some(4401), _)));
}

#[tokio::test]
async fn invalid_subscription_arguments_are_reported_with_a_code() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("socket5").await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ws.init(json!({ "Authorization": format!("Bearer {}", user.token) }))
        .await;
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { heartbeat(intervalMs: 1) }" } })).await;
    let message = ws.next_json().await;
    let errors = if message["type"] == "error" {
        &message["payload"][0]
    } else {
        &message["payload"]["errors"][0]
    };
    assert_eq!(errors["extensions"]["code"], "BAD_USER_INPUT", "{message}");
    assert_eq!(errors["extensions"]["field"], "intervalMs", "{message}");
}

/// Waits for the server to close the socket (skipping anything it sends first).
async fn closed(ws: &mut crate::helpers::WsClient) -> (Option<u16>, String) {
    loop {
        match ws.next().await {
            WsEvent::Closed(code, reason) => return (code, reason),
            WsEvent::Json(_) => continue,
        }
    }
}

#[tokio::test]
async fn logout_and_password_change_close_live_sockets_of_those_sessions_only() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("socket6").await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let response = app.login("socket6", crate::helpers::PASSWORD).await;
        tokens.push(
            response["data"]["login"]["accessToken"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let (second, third) = (tokens[0].clone(), tokens[1].clone());
    let mut sockets = Vec::new();
    for token in [&user.token, &second, &third] {
        let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
        let ack = ws
            .init(json!({ "Authorization": format!("Bearer {token}") }))
            .await;
        assert!(matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"));
        sockets.push(ws);
    }

    // Logging out the first session closes its socket, and only that one.
    app.gql_ok(Some(&user.token), "mutation { logout }", json!({}))
        .await;
    let (code, reason) = closed(&mut sockets[0]).await;
    assert_eq!(code, Some(4403));
    assert!(reason.contains("revoked"), "{reason}");
    for ws in &mut sockets[1..] {
        ws.send(json!({ "type": "ping" })).await;
        assert_eq!(
            ws.next_json().await["type"],
            "pong",
            "other sessions stay connected"
        );
    }

    // A password change through the second session closes the third session's socket.
    app.gql_ok(
        Some(&second),
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) }",
        json!({ "i": { "currentPassword": crate::helpers::PASSWORD, "newPassword": "a brand new secret" } }),
    )
    .await;
    let (code, _) = closed(&mut sockets[2]).await;
    assert_eq!(code, Some(4403));
    sockets[1].send(json!({ "type": "ping" })).await;
    assert_eq!(
        sockets[1].next_json().await["type"],
        "pong",
        "the changing session stays"
    );
}

#[tokio::test]
async fn a_socket_is_closed_when_its_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::test_config(dir.path()).await;
    config.token_ttl_seconds = 2;
    let app = crate::helpers::spawn_with_config(config).await;
    let user = app.register("socket7").await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    let ack = ws
        .init(json!({ "Authorization": format!("Bearer {}", user.token) }))
        .await;
    assert!(matches!(ack, WsEvent::Json(ref v) if v["type"] == "connection_ack"));
    let started = std::time::Instant::now();
    let (code, reason) = closed(&mut ws).await;
    assert_eq!(code, Some(4403));
    assert!(reason.contains("expired"), "{reason}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}
