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
