//! What every edge adds to an answer: the request's id (`x-request-id`, made when the client sent
//! none, echoed when it did) and error fields spelled the way the client's API spells them.
use reqwest::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::{
    file_bytes::wav,
    files::{file_part, gql_multipart, named_file_part, post_parts, text_part},
    fixtures::create_group,
    helpers::{TestApp, error_code, error_field, spawn_app},
};

/// `method path` (with an optional `x-request-id`); the status and the `x-request-id` answered.
async fn request_id_of(
    app: &TestApp,
    method: Method,
    path: &str,
    sent: Option<&str>,
) -> (u16, Option<String>) {
    let mut request = app.client.request(method, format!("{}{path}", app.address));
    if path == "/graphql" {
        request = request.json(&json!({ "query": "{ __typename }" }));
    }
    if let Some(id) = sent {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), id)
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let (app, _dir) = spawn_app().await;
    let mut seen = Vec::new();
    for (method, path, status) in [
        (Method::GET, "/healthz", 200),
        (Method::POST, "/graphql", 200),
        (Method::GET, "/no/such/endpoint", 404),
        (Method::GET, "/music/", 401),
    ] {
        let (got, id) = request_id_of(&app, method, path, None).await;
        assert_eq!(got, status, "{path}");
        let id = id.unwrap_or_else(|| panic!("{path}: no x-request-id"));
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{path}: {id}");
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 4, "one id per request");
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_echoed() {
    let (app, _dir) = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/healthz"),
        (Method::POST, "/graphql"),
        (Method::GET, "/no/such/endpoint"),
    ] {
        let (_, id) = request_id_of(&app, method, path, Some("client-trace-42")).await;
        assert_eq!(id.as_deref(), Some("client-trace-42"), "{path}");
    }
    // The WebSocket upgrade too: the connection's logs name the request that opened it.
    let mut request = format!("ws://127.0.0.1:{}/graphql/ws", app.port)
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    headers.insert("x-request-id", "socket-trace-7".parse().unwrap());
    let (_socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("socket-trace-7")
    );
}

#[tokio::test]
async fn upload_track_names_the_graphql_field_and_rest_keeps_its_own() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    app.register("ben").await;
    // A group is not a room: a track cannot be put there.
    let group = create_group(&app, &ana.token, "band", &["ben"]).await;

    let response = gql_multipart(
        &app,
        &ana.token,
        json!({
            "query": "mutation($f: Upload!, $room: ID) { uploadTrack(file: $f, roomId: $room) { id } }",
            "variables": { "f": null, "room": group }
        }),
        json!({ "0": ["variables.f"] }),
        vec![named_file_part("0", "song.wav", "audio/wav", wav(1))],
    )
    .await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
    assert_eq!(error_field(&response), Some("roomId"), "{response}");

    // REST names its form field `room_id`.
    let parts = [
        text_part("room_id", &group),
        file_part("song.wav", "audio/wav", wav(1)),
    ];
    let response = post_parts(&app, &ana.token, "/music/upload", &parts).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "BAD_USER_INPUT", "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("room_id"),
        "{body}"
    );
}
