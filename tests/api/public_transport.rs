//! The transport holds against slow and greedy clients: headers, bodies and idle keep-alive
//! connections are timed (slowloris, stalled and trickled bodies cut off, a steady slow upload
//! accepted), WebSockets outlive those timeouts, oversized WebSocket messages close with 1009,
//! and the caps on operations per socket, sockets per user and sockets per instance refuse
//! clearly. Graceful shutdown still lets a request in flight finish.
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::{sleep, timeout},
};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

use crate::{
    file_bytes::png,
    files::{BOUNDARY, assert_nothing_stored, file_part, multipart},
    helpers::{TestApp, WsClient, WsEvent, spawn_app, spawn_with_config, test_config},
};

/// One beat at once, the next a minute later: an operation that stays active.
const LONG: &str = "subscription { heartbeat(intervalMs: 60000, count: 2) }";
const SHORT: &str = "subscription { heartbeat(intervalMs: 100, count: 1) }";

/// A server with settings changed by `adjust`.
async fn spawn_adjusted(adjust: impl FnOnce(&mut goftgu::Config)) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    adjust(&mut config);
    (spawn_with_config(config).await, dir)
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connects")
}

fn get_healthz() -> &'static [u8] {
    b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
}

/// Reads one Content-Length framed response: (status, lower-cased head, body).
async fn read_response(stream: &mut (impl AsyncRead + Unpin)) -> (u16, String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("a response within 5 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status = head[9..12].parse().expect("status code");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().expect("length"))
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("the body within 5 s")
            .expect("read");
        assert!(n > 0, "closed inside the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    (status, head, buf[head_end..head_end + length].to_vec())
}

/// Whether the server closes the connection within `limit` (end of stream or reset), reading
/// and discarding whatever comes first.
async fn closes_within(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> bool {
    timeout(limit, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

/// The start of an authenticated multipart upload of `file` to `/api/upload`: the request head
/// and the body, for the test to send at its own pace.
fn upload_request(app_token: &str, file: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let body = multipart(&[file_part("slow.png", "image/png", file)]);
    let head = format!(
        "POST /api/upload HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {app_token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    (head.into_bytes(), body)
}

#[tokio::test]
async fn a_slowloris_client_is_cut_off_while_others_are_served() {
    let (app, _dir) = spawn_adjusted(|c| {
        c.header_timeout_seconds = 1;
        c.keep_alive_seconds = 30;
    })
    .await;
    let mut silent = connect(&app).await;
    let (mut reader, mut writer) = connect(&app).await.into_split();
    let dripping = tokio::spawn(async move {
        let _ = writer
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            .await;
        for i in 0..40 {
            sleep(Duration::from_millis(250)).await;
            if writer
                .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    });
    // While both hold their connections, another client is served.
    let response = app.health().await;
    assert_eq!(response.status(), 200);
    assert!(
        closes_within(&mut reader, Duration::from_secs(5)).await,
        "a head sent one line at a time is cut off after the header timeout"
    );
    assert!(
        closes_within(&mut silent, Duration::from_secs(5)).await,
        "a connection that sends nothing is closed after the header timeout"
    );
    dripping.abort();
    let response = app.health().await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout() {
    // The keep-alive wait is longer than the header timeout, and counted apart from it.
    let (app, _dir) = spawn_adjusted(|c| {
        c.header_timeout_seconds = 1;
        c.keep_alive_seconds = 3;
    })
    .await;
    let mut stream = connect(&app).await;
    stream.write_all(get_healthz()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.0, 200);
    sleep(Duration::from_millis(1500)).await;
    stream.write_all(get_healthz()).await.unwrap();
    assert_eq!(
        read_response(&mut stream).await.0,
        200,
        "a kept-alive connection idle past the header timeout is still served"
    );
    assert!(
        closes_within(&mut stream, Duration::from_secs(8)).await,
        "the idle connection is closed after the keep-alive timeout"
    );
}

#[tokio::test]
async fn stalled_and_trickled_bodies_are_cut_off_with_408() {
    let (app, _dir) = spawn_adjusted(|c| {
        c.body_timeout_seconds = 1;
        c.min_body_bytes_per_second = 1024;
    })
    .await;
    let user = app.register("trickler").await;

    // Headers promise 1,000 bytes; nine arrive, then nothing.
    let mut stalled = connect(&app).await;
    stalled
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    let (status, head, body) = read_response(&mut stalled).await;
    assert_eq!(status, 408, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    assert!(closes_within(&mut stalled, Duration::from_secs(5)).await);

    // A body that never stops for long but averages 80 bytes/s: cut off by the rate.
    for (path, content_type) in [
        ("/graphql", "application/json".to_string()),
        (
            "/api/upload",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        ),
    ] {
        let stream = connect(&app).await;
        let (mut reader, mut writer) = stream.into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n",
            user.token
        );
        writer.write_all(head.as_bytes()).await.unwrap();
        let trickle = tokio::spawn(async move {
            let mut part = multipart(&[file_part("t.png", "image/png", png(99_000))]);
            part.truncate(99_000);
            for chunk in part.chunks(8) {
                if writer.write_all(chunk).await.is_err() {
                    return;
                }
                sleep(Duration::from_millis(100)).await;
            }
        });
        let (status, head, _) = read_response(&mut reader).await;
        assert_eq!(status, 408, "{path}: {head}");
        assert!(closes_within(&mut reader, Duration::from_secs(5)).await);
        trickle.abort();
    }
    assert_nothing_stored(&app, 0, "a trickled upload").await;
}

#[tokio::test]
async fn a_slow_but_steady_upload_is_accepted() {
    let (app, _dir) = spawn_adjusted(|c| {
        c.body_timeout_seconds = 1;
        c.min_body_bytes_per_second = 1024;
    })
    .await;
    let user = app.register("patient").await;
    // 24 KiB at about 10 KiB/s: well past the grace period, well above the minimum rate.
    let (head, body) = upload_request(&user.token, png(24 * 1024));
    let mut stream = connect(&app).await;
    stream.write_all(&head).await.unwrap();
    for chunk in body.chunks(1024) {
        stream.write_all(chunk).await.unwrap();
        sleep(Duration::from_millis(100)).await;
    }
    let (status, head, body) = read_response(&mut stream).await;
    assert_eq!(status, 201, "{head} {}", String::from_utf8_lossy(&body));
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish_and_closes_idle_connections() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("lastone").await;
    let port = app.port;
    let mut fresh = connect(&app).await;
    let mut kept = connect(&app).await;
    kept.write_all(get_healthz()).await.unwrap();
    assert_eq!(read_response(&mut kept).await.0, 200);

    let (head, body) = upload_request(&user.token, png(64 * 1024));
    let mut uploading = connect(&app).await;
    uploading.write_all(&head).await.unwrap();
    let (first, rest) = body.split_at(body.len() / 2);
    uploading.write_all(first).await.unwrap();
    sleep(Duration::from_millis(300)).await;

    // `stop` waits (at most 10 s) until the server is down; the idle connections must not
    // hold it up, the upload must be allowed to finish.
    let stopping = tokio::spawn(app.stop());
    sleep(Duration::from_millis(300)).await;
    uploading.write_all(rest).await.unwrap();
    let (status, head, _) = read_response(&mut uploading).await;
    assert_eq!(status, 201, "{head}");
    assert!(head.contains("connection: close"), "{head}");
    stopping.await.expect("server stopped");
    assert!(closes_within(&mut fresh, Duration::from_secs(2)).await);
    assert!(closes_within(&mut kept, Duration::from_secs(2)).await);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "no longer accepting"
    );
}

async fn ack(ws: &mut WsClient, payload: Value) {
    let ack = ws.init(payload).await;
    assert!(
        matches!(&ack, WsEvent::Json(v) if v["type"] == "connection_ack"),
        "{ack:?}"
    );
}

fn bearer(token: &str) -> Value {
    json!({ "Authorization": format!("Bearer {token}") })
}

#[tokio::test]
async fn a_websocket_outlives_the_header_and_keep_alive_timeouts() {
    let (app, _dir) = spawn_adjusted(|c| {
        c.header_timeout_seconds = 1;
        c.keep_alive_seconds = 1;
        c.body_timeout_seconds = 1;
    })
    .await;
    let user = app.register("lingerer").await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ack(&mut ws, bearer(&user.token)).await;
    sleep(Duration::from_millis(2500)).await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.next_json().await["type"], "pong");
    let query = "subscription { heartbeat(intervalMs: 600, count: 4) }";
    ws.send(json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }))
        .await;
    for _ in 0..4 {
        assert_eq!(ws.next_json().await["type"], "next");
    }
    assert_eq!(
        ws.next_json().await,
        json!({ "id": "1", "type": "complete" })
    );
}

#[tokio::test]
async fn an_oversized_websocket_message_closes_with_1009() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("bigmouth").await;
    let huge = format!("# {}\n{LONG}", "x".repeat(300 * 1024));

    // As the first message, before any authentication.
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    let _ = ws.stream.send(Message::Text(huge.clone().into())).await;
    match ws.next().await {
        WsEvent::Closed(Some(1009), _) => {}
        other => panic!("expected close 1009, got {other:?}"),
    }

    // Inside an authenticated session, on both protocols.
    for protocol in ["graphql-transport-ws", "graphql-ws"] {
        let mut ws = app.ws("/graphql/ws", protocol).await;
        ack(&mut ws, bearer(&user.token)).await;
        let kind = if protocol == "graphql-ws" {
            "start"
        } else {
            "subscribe"
        };
        let message = json!({ "id": "1", "type": kind, "payload": { "query": huge } });
        let _ = ws
            .stream
            .send(Message::Text(message.to_string().into()))
            .await;
        match ws.next().await {
            WsEvent::Closed(Some(1009), _) => {}
            other => panic!("{protocol}: expected close 1009, got {other:?}"),
        }
    }
}

/// The next message that is not a subscription result (`next`, legacy `data`).
async fn next_control(ws: &mut WsClient) -> Value {
    loop {
        let message = ws.next_json().await;
        if message["type"] != "next" && message["type"] != "data" {
            return message;
        }
    }
}

#[tokio::test]
async fn the_subscription_cap_refuses_one_more_and_finished_operations_free_slots() {
    let (app, _dir) = spawn_adjusted(|c| c.max_subscriptions_per_socket = 3).await;
    let user = app.register("greedy").await;
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ack(&mut ws, bearer(&user.token)).await;
    let subscribe = |id: &str, query: &str| json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    for id in ["1", "2", "3", "4"] {
        ws.send(subscribe(id, LONG)).await;
    }
    let refused = next_control(&mut ws).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "4");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"], "RATE_LIMITED",
        "{refused}"
    );
    assert!(refused["payload"][0]["message"].as_str().is_some());

    // The socket stays open; re-using a running id replaces that operation, it is not refused.
    ws.send(subscribe("2", LONG)).await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(next_control(&mut ws).await["type"], "pong");

    // A completed operation frees its slot: the client's `complete`, and one that runs out.
    ws.send(json!({ "id": "1", "type": "complete" })).await;
    assert_eq!(
        next_control(&mut ws).await,
        json!({ "id": "1", "type": "complete" })
    );
    ws.send(subscribe("5", SHORT)).await;
    assert_eq!(
        next_control(&mut ws).await,
        json!({ "id": "5", "type": "complete" }),
        "admitted and run to its end"
    );
    ws.send(subscribe("6", LONG)).await;
    ws.send(subscribe("7", LONG)).await;
    let refused = next_control(&mut ws).await;
    assert_eq!(
        (refused["type"].as_str(), refused["id"].as_str()),
        (Some("error"), Some("7")),
        "{refused}"
    );

    // The legacy protocol refuses with its own `error` (one error as the payload).
    let mut legacy = app.ws("/graphql/ws", "graphql-ws").await;
    ack(&mut legacy, json!({ "token": user.token })).await;
    for id in ["a", "b", "c", "d"] {
        legacy
            .send(json!({ "id": id, "type": "start", "payload": { "query": LONG } }))
            .await;
    }
    let refused = next_control(&mut legacy).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "d");
    assert_eq!(refused["payload"]["extensions"]["code"], "RATE_LIMITED");
}

#[tokio::test]
async fn the_sockets_per_user_cap_closes_the_extra_socket_with_1008() {
    let (app, _dir) = spawn_adjusted(|c| c.max_sockets_per_user = 2).await;
    let ana = app.register("manytabs").await;
    let ben = app.register("onetab").await;
    let mut first = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ack(&mut first, bearer(&ana.token)).await;
    let mut second = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ack(&mut second, bearer(&ana.token)).await;

    let mut third = app.ws("/graphql/ws", "graphql-transport-ws").await;
    match third.init(bearer(&ana.token)).await {
        WsEvent::Closed(Some(1008), reason) => {
            assert!(reason.contains("Too many sockets"), "{reason}")
        }
        other => panic!("expected close 1008, got {other:?}"),
    }
    let mut legacy = app.ws("/graphql/ws", "graphql-ws").await;
    let error = legacy.init(json!({ "token": ana.token })).await;
    assert!(
        matches!(&error, WsEvent::Json(v) if v["type"] == "connection_error"),
        "{error:?}"
    );
    assert!(matches!(
        legacy.next().await,
        WsEvent::Closed(Some(1008), _)
    ));

    // Another user is not affected.
    let mut other = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ack(&mut other, bearer(&ben.token)).await;

    // A closed socket frees its place.
    first.stream.close(None).await.unwrap();
    let mut accepted = false;
    for _ in 0..30 {
        let mut retry = app.ws("/graphql/ws", "graphql-transport-ws").await;
        if let WsEvent::Json(v) = retry.init(bearer(&ana.token)).await {
            assert_eq!(v["type"], "connection_ack");
            accepted = true;
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "a freed place is given again");
}

#[tokio::test]
async fn the_instance_socket_cap_answers_503() {
    let (app, _dir) = spawn_adjusted(|c| c.max_sockets = 2).await;
    let mut first = app.ws("/graphql/ws", "graphql-transport-ws").await;
    let _second = app.ws("/graphql", "graphql-transport-ws").await;

    let request = || {
        let mut request = format!("ws://127.0.0.1:{}/graphql/ws", app.port)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        request
    };
    match tokio_tungstenite::connect_async(request()).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            assert!(response.headers().contains_key("retry-after"));
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())
                    .expect("JSON body");
            assert!(body["detail"].as_str().is_some(), "{body}");
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }

    first.stream.close(None).await.unwrap();
    let mut accepted = false;
    for _ in 0..30 {
        if tokio_tungstenite::connect_async(request()).await.is_ok() {
            accepted = true;
            break;
        }
        sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "a closed socket frees its place");
}
