//! Downloads end to end: who may GET /files/{id} (token or signed link), Range requests, file
//! messages and their kinds, attachments added to a message, and deletion.
use reqwest::Response;
use serde_json::{Value, json};

use crate::{
    file_bytes::{elf, jpeg, pdf, png, png_patterned, text, wav},
    files::{
        Part, assert_attachment, assert_nothing_stored, assert_ranges, fetch, fetch_bytes,
        file_part, json_with_status, post_expect, post_parts, stored_files, tampered_signature,
        text_part, upload, without_query,
    },
    fixtures::{create_group, create_room, delete, join_room, send},
    helpers::{TestApp, spawn_app},
    live::{MODERN, Socket},
};

/// POSTs a file message to `chat`.
async fn post_file(app: &TestApp, token: &str, chat: &str, parts: &[Part]) -> Response {
    post_parts(
        app,
        token,
        &format!("/api/chats/{chat}/messages/file"),
        parts,
    )
    .await
}

/// POSTs a file message and returns the message JSON (201 asserted).
async fn file_message(app: &TestApp, token: &str, chat: &str, parts: &[Part]) -> Value {
    json_with_status(
        post_file(app, token, chat, parts).await,
        201,
        "file message",
    )
    .await
}

/// GETs `url` and returns only the status.
async fn status(app: &TestApp, url: &str, token: Option<&str>) -> u16 {
    fetch(app, url, token, None).await.status().as_u16()
}

#[tokio::test]
async fn strangers_need_a_valid_signature_members_only_their_token() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cara = app.register("cara").await;
    let group = create_group(&app, &ana.token, "Private", &["ben"]).await;
    let image = png(900);
    let message = file_message(
        &app,
        &ana.token,
        &group,
        &[file_part("secret.png", "image/png", image.clone())],
    )
    .await;
    let signed = message["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let bare = without_query(&signed).to_string();
    assert!(
        bare.ends_with(message["attachments"][0]["id"].as_str().unwrap()),
        "{signed}"
    );

    assert_eq!(
        status(&app, &bare, Some(&cara.token)).await,
        404,
        "stranger, no signature"
    );
    let anonymous = status(&app, &bare, None).await;
    assert!(
        [401, 403, 404].contains(&anonymous),
        "no token, no signature: {anonymous}"
    );
    let (code, served) = fetch_bytes(&app, &signed, None).await;
    assert_eq!(
        (code, served),
        (200, image.clone()),
        "the signed link needs no header"
    );
    let tampered = tampered_signature(&signed);
    for (url, token) in [(&tampered, None), (&tampered, Some(cara.token.as_str()))] {
        let code = status(&app, url, token).await;
        assert!([403, 404].contains(&code), "tampered {url}: {code}");
    }
    let later_exp = signed.replacen("exp=", "exp=9", 1);
    let code = status(&app, &later_exp, None).await;
    assert!(
        [403, 404].contains(&code),
        "exp changed {later_exp}: {code}"
    );
    for member in [&ben, &ana] {
        let (code, served) = fetch_bytes(&app, &bare, Some(&member.token)).await;
        assert_eq!((code, served), (200, image.clone()), "{}", member.username);
    }

    // An upload not attached anywhere is the uploader's alone.
    let loose = upload(&app, &ana.token, "draft.txt", "text/plain", text()).await;
    let loose_bare = without_query(loose["url"].as_str().unwrap()).to_string();
    assert_eq!(status(&app, &loose_bare, Some(&ana.token)).await, 200);
    assert_eq!(status(&app, &loose_bare, Some(&ben.token)).await, 404);
    let unknown = format!("/files/{}", uuid::Uuid::new_v4());
    assert_eq!(status(&app, &unknown, Some(&ana.token)).await, 404);
}

#[tokio::test]
async fn range_requests_on_a_downloaded_file() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let bytes = png_patterned(1000);
    let body = upload(&app, &ana.token, "p.png", "image/png", bytes.clone()).await;
    let signed = body["url"].as_str().unwrap();
    assert_ranges(&app, signed, None, &bytes, "image/png").await;
    assert_ranges(
        &app,
        without_query(signed),
        Some(&ana.token),
        &bytes,
        "image/png",
    )
    .await;
}

#[tokio::test]
async fn file_messages_take_their_kind_from_the_bytes() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;
    let cases = [
        (
            "voice.bin",
            "application/octet-stream",
            wav(1),
            "AUDIO",
            "audio/",
        ),
        (
            "photo.dat",
            "application/octet-stream",
            png(400),
            "IMAGE",
            "image/png",
        ),
        ("scan.jpg", "image/jpeg", jpeg(400), "IMAGE", "image/jpeg"),
        (
            "report.pdf",
            "application/pdf",
            pdf(),
            "FILE",
            "application/pdf",
        ),
        ("notes.txt", "text/plain", text(), "FILE", "text/plain"),
    ];
    let mut ids = Vec::new();
    for (i, (name, mime, bytes, kind, detected)) in cases.iter().enumerate() {
        let caption = if i == 0 {
            String::new()
        } else {
            format!("caption {i}")
        };
        let mut parts = vec![file_part(name, mime, bytes.clone())];
        if i > 0 {
            parts.insert(0, text_part("content", &caption));
        }
        let message = file_message(&app, &ben.token, &group, &parts).await;
        assert_eq!(message["kind"], *kind, "{name}: {message}");
        assert_eq!(message["chat_id"], group.as_str());
        assert_eq!(message["sender_id"], ben.id.as_str());
        if caption.is_empty() {
            assert!(
                [json!(""), Value::Null].contains(&message["content"]),
                "{message}"
            );
        } else {
            assert_eq!(message["content"], caption.as_str());
        }
        assert!(
            message["id"].is_string() && message["created_at"].is_string(),
            "{message}"
        );
        let attachments = message["attachments"].as_array().unwrap();
        assert_eq!(attachments.len(), 1, "{message}");
        assert_attachment(&attachments[0], detected, bytes.len(), name);
        let (code, served) = fetch_bytes(&app, attachments[0]["url"].as_str().unwrap(), None).await;
        assert_eq!((code, &served), (200, bytes), "{name}");
        ids.push(message["id"].as_str().unwrap().to_string());
    }

    let list = app
        .gql_ok(
            Some(&ana.token),
            "query($id: ID!) { messages(chatId: $id, first: 10) { nodes { id kind content attachments { id url fileName contentType size } } } }",
            json!({ "id": group }),
        )
        .await;
    let nodes = list["messages"]["nodes"].as_array().unwrap();
    for (id, (name, _, bytes, kind, _)) in ids.iter().zip(&cases) {
        let node = nodes
            .iter()
            .find(|n| n["id"] == id.as_str())
            .expect("listed");
        assert_eq!(node["kind"], *kind, "{node}");
        assert_eq!(node["attachments"][0]["fileName"], *name);
        assert_eq!(node["attachments"][0]["size"], bytes.len() as u64);
    }
}

#[tokio::test]
async fn file_messages_follow_the_chat_rules() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cara = app.register("cara").await;
    let room = create_room(&app, &ana.token, "Lobby", false).await;
    join_room(&app, &ben.token, &room).await;
    app.gql_ok(
        Some(&ana.token),
        "mutation($chat: ID!, $user: ID!) { muteMember(chatId: $chat, userId: $user, muted: true) }",
        json!({ "chat": room, "user": ben.id }),
    )
    .await;
    let group = create_group(&app, &ana.token, "Private", &["ben"]).await;
    let image = || [file_part("p.png", "image/png", png(300))];
    let cases = [
        (&ben, room.clone(), 403, "muted"),
        (&cara, room.clone(), 403, "public room not joined"),
        (&cara, group.clone(), 404, "stranger of a private group"),
        (&ana, uuid::Uuid::new_v4().to_string(), 404, "unknown chat"),
    ];
    for (user, chat, expected, what) in cases {
        let response = post_file(&app, &user.token, &chat, &image()).await;
        let body = json_with_status(response, expected, what).await;
        assert!(body["detail"].is_string(), "{what}: {body}");
    }
    let exe = [file_part("p.png", "image/png", elf(2048))];
    json_with_status(post_file(&app, &ana.token, &group, &exe).await, 415, "ELF").await;
    assert_nothing_stored(&app, 0, "refused file messages").await;
    let count = app
        .gql_ok(
            Some(&ana.token),
            "query($id: ID!) { messages(chatId: $id, first: 1) { totalCount } }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(count["messages"]["totalCount"], 0, "no message written");
}

#[tokio::test]
async fn only_the_sender_adds_attachments_to_a_message() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cara = app.register("cara").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;
    let message = send(&app, &ana.token, &group, "see attached").await;
    let path = format!("/api/conversations/{group}/messages/{message}/attachments/");
    let photo = || [file_part("holiday.jpg", "image/jpeg", jpeg(640))];

    post_expect(&app, &ben.token, &path, &photo(), 403).await;
    post_expect(&app, &cara.token, &path, &photo(), 404).await;
    let not_media = [file_part("x.png", "image/png", pdf())];
    post_expect(&app, &ana.token, &path, &not_media, 415).await;
    let audio = [file_part("x.mp4", "video/mp4", wav(1))];
    post_expect(&app, &ana.token, &path, &audio, 415).await;
    assert_nothing_stored(&app, 0, "refused attachments").await;

    let attachment = post_expect(&app, &ana.token, &path, &photo(), 201).await;
    assert_attachment(&attachment, "image/jpeg", 640, "holiday.jpg");
    let second = post_expect(
        &app,
        &ana.token,
        &path,
        &[file_part("dot.png", "image/png", png(100))],
        201,
    )
    .await;
    let list = app
        .gql_ok(
            Some(&ben.token),
            "query($id: ID!) { messages(chatId: $id, first: 5) { nodes { id attachments { id } } } }",
            json!({ "id": group }),
        )
        .await;
    let node = &list["messages"]["nodes"][0];
    assert_eq!(node["id"], message.as_str());
    let mut ids: Vec<&str> = node["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![
        attachment["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    ];
    expected.sort();
    assert_eq!(ids, expected);
    let bare = without_query(attachment["url"].as_str().unwrap()).to_string();
    assert_eq!(status(&app, &bare, Some(&ben.token)).await, 200);
    assert_eq!(status(&app, &bare, Some(&cara.token)).await, 404);
    // A message of another chat under this conversation's path is not found.
    let other = create_group(&app, &ana.token, "Other", &[]).await;
    let wrong = format!("/api/conversations/{other}/messages/{message}/attachments/");
    let response = post_parts(&app, &ana.token, &wrong, &photo()).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn deleting_the_message_makes_its_attachments_404() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;
    let message = file_message(
        &app,
        &ana.token,
        &group,
        &[file_part("gone.png", "image/png", png(500))],
    )
    .await;
    let signed = message["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let bare = without_query(&signed).to_string();
    assert_eq!(status(&app, &signed, None).await, 200);
    assert_eq!(status(&app, &bare, Some(&ben.token)).await, 200);
    assert_eq!(stored_files(&app).len(), 1);

    delete(&app, &ana.token, message["id"].as_str().unwrap()).await;
    assert_eq!(status(&app, &signed, None).await, 404, "old signed link");
    assert_eq!(status(&app, &bare, Some(&ben.token)).await, 404, "member");
    assert_eq!(status(&app, &bare, Some(&ana.token)).await, 404, "sender");
    let range = fetch(&app, &signed, None, Some("bytes=0-9")).await;
    assert_eq!(range.status(), 404, "range on a deleted attachment");
}

#[tokio::test]
async fn a_file_message_reaches_chat_event_subscribers() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;
    let mut socket = Socket::open(&app, &ben.token, MODERN).await;
    let query = "subscription($chatId: ID!) { chatEvents(chatId: $chatId) { __typename ... on MessageCreated { message { id kind content attachments { id fileName } } } } }";
    socket
        .subscribe("chat", query, json!({ "chatId": group }))
        .await;
    let parts = [
        text_part("content", "look"),
        file_part("sky.png", "image/png", png(300)),
    ];
    let message = file_message(&app, &ana.token, &group, &parts).await;
    let event = socket.event("chat").await;
    assert_eq!(event["__typename"], "MessageCreated", "{event}");
    assert_eq!(event["message"]["id"], message["id"]);
    assert_eq!(event["message"]["kind"], "IMAGE");
    assert_eq!(event["message"]["content"], "look");
    assert_eq!(
        event["message"]["attachments"][0]["id"],
        message["attachments"][0]["id"]
    );
    assert_eq!(event["message"]["attachments"][0]["fileName"], "sky.png");
}
