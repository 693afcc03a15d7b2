//! Uploads end to end: /api/upload (and its alias), limits, type detection from the bytes,
//! cut-off bodies, hostile file names, profile and group images, and GraphQL multipart uploads
//! attached with sendMessage.
use serde_json::{Value, json};

use crate::{
    file_bytes::{elf, gif, jpeg, mp3, ogg, pdf, pe, png, text, wav, wav_sized},
    files::{
        TEN_MB, assert_attachment, assert_nothing_stored, fetch, fetch_bytes, file_part,
        files_under, gql_multipart, header, multipart, named_file_part, post_body, post_expect,
        post_parts, stored_files, text_part, upload, without_query,
    },
    fixtures::{assert_bad_input, chat, create_group, create_room, join_room},
    helpers::{TestApp, spawn_app},
};

#[tokio::test]
async fn upload_returns_the_attachment_and_its_signed_url_serves_the_bytes() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    // (endpoint, file name, bytes, expected content type); the part's own Content-Type is
    // generic: the type comes from the bytes.
    let (up, alias) = ("/api/upload", "/chat/upload_media/");
    let cases = [
        (up, "photo.png", png(500), "image/png"),
        (alias, "pic.jpg", jpeg(300), "image/jpeg"),
        (up, "anim.gif", gif(), "image/gif"),
        (up, "song.mp3", mp3(3), "audio/"),
        (up, "note.wav", wav(1), "audio/"),
        (up, "clip.ogg", ogg(), "audio/ogg"),
        (up, "doc.pdf", pdf(), "application/pdf"),
        (up, "readme.txt", text(), "text/plain"),
    ];
    let count = cases.len();
    for (path, name, bytes, detected) in cases {
        let mime = "application/octet-stream";
        let body = post_expect(
            &app,
            &ana.token,
            path,
            &[file_part(name, mime, bytes.clone())],
            201,
        )
        .await;
        assert_attachment(&body, detected, bytes.len(), name);
        let url = body["url"].as_str().unwrap();
        let response = fetch(&app, url, None, None).await;
        assert_eq!(response.status(), 200, "{name}: GET {url}");
        assert!(
            header(&response, "content-type").starts_with(detected),
            "{name}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            &bytes[..],
            "{name}"
        );
    }
    assert_eq!(
        stored_files(&app).len(),
        count,
        "one stored file per upload"
    );
}

#[tokio::test]
async fn uploads_need_a_valid_token() {
    let (app, _dir) = spawn_app().await;
    let body = multipart(&[file_part("photo.png", "image/png", png(100))]);
    for token in [None, Some("not-a-token")] {
        for path in [
            "/api/upload",
            "/api/users/me/profile-image",
            "/music/upload",
        ] {
            let response = post_body(&app, token, path, body.clone()).await;
            assert_eq!(response.status(), 401, "{path} with {token:?}");
            let json: Value = response.json().await.unwrap();
            assert!(json["detail"].is_string(), "{path}: {json}");
        }
    }
    assert_nothing_stored(&app, 0, "unauthenticated uploads").await;
}

#[tokio::test]
async fn ten_megabytes_is_accepted_one_byte_more_is_413_and_nothing_is_stored() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let over = post_parts(
        &app,
        &ana.token,
        "/api/upload",
        &[file_part("big.png", "image/png", png(TEN_MB + 1))],
    )
    .await;
    assert_eq!(over.status(), 413);
    let json: Value = over.json().await.unwrap();
    assert!(json["detail"].is_string(), "{json}");
    assert_nothing_stored(&app, 0, "10 MB + 1").await;

    let exact = upload(&app, &ana.token, "big.png", "image/png", png(TEN_MB)).await;
    assert_attachment(&exact, "image/png", TEN_MB, "big.png");
    let files = stored_files(&app);
    assert_eq!(files.len(), 1);
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), TEN_MB as u64);
}

#[tokio::test]
async fn types_come_from_the_bytes_and_executables_are_415() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let mut unknown = vec![0x00, 0x13, 0x37, 0xfe, 0x01, 0x02, 0xc3, 0x28];
    unknown.extend((0..4000).map(|i| (i * 7 % 256) as u8));
    let cases = [
        ("/api/upload", "photo.png", "image/png", elf(4096)),
        (
            "/api/users/me/profile-image",
            "photo.png",
            "image/png",
            elf(4096),
        ),
        ("/api/upload", "report.pdf", "application/pdf", pe(4096)),
        (
            "/api/users/me/profile-image",
            "me.jpg",
            "image/jpeg",
            pe(4096),
        ),
        (
            "/api/upload",
            "notes.txt",
            "text/plain",
            b"#!/bin/sh\nrm -rf /\n".to_vec(),
        ),
        ("/api/upload", "data.png", "image/png", unknown),
        // Allowed bytes, but not an image, to the images-only endpoint.
        ("/api/users/me/profile-image", "me.png", "image/png", pdf()),
        ("/api/users/me/profile-image", "me.png", "image/png", wav(1)),
    ];
    for (path, name, mime, bytes) in cases {
        let body = post_expect(&app, &ana.token, path, &[file_part(name, mime, bytes)], 415).await;
        assert!(body["detail"].is_string(), "{path} {name}: {body}");
        assert_nothing_stored(&app, 0, &format!("{path} {name}")).await;
    }
    let me = app
        .gql_ok(Some(&ana.token), "{ me { avatarUrl } }", json!({}))
        .await;
    assert!(me["me"]["avatarUrl"].is_null(), "{me}");
}

#[tokio::test]
async fn a_body_cut_off_mid_file_or_without_a_file_part_is_400() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let image = multipart(&[file_part("photo.png", "image/png", png(64 * 1024))]);
    let audio = multipart(&[file_part("song.wav", "audio/wav", wav_sized(64 * 1024))]);
    for (path, full) in [
        ("/api/upload", &image),
        ("/api/users/me/profile-image", &image),
        ("/music/upload", &audio),
    ] {
        // Headers and half the file: no closing boundary.
        let cut = full[..full.len() / 2].to_vec();
        let response = post_body(&app, Some(&ana.token), path, cut).await;
        assert_eq!(response.status(), 400, "{path}");
        let json: Value = response.json().await.unwrap();
        assert!(json["detail"].is_string(), "{path}: {json}");
        assert_nothing_stored(&app, 0, &format!("cut-off body to {path}")).await;
    }
    // A complete body without a part named "file".
    for parts in [
        vec![text_part("caption", "hello")],
        vec![named_file_part(
            "upload",
            "photo.png",
            "image/png",
            png(100),
        )],
    ] {
        let response = post_parts(&app, &ana.token, "/api/upload", &parts).await;
        assert_eq!(response.status(), 400);
    }
    // Not multipart at all.
    let response = app
        .client
        .post(format!("{}/api/upload", app.address))
        .bearer_auth(&ana.token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_nothing_stored(&app, 0, "no file part").await;
}

#[tokio::test]
async fn hostile_file_names_are_sanitised_and_stay_inside_the_data_dir() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let data_dir = app.state.config.data_dir.clone();
    let cases = [
        ("../../etc/passwd.txt", text(), "passwd.txt"),
        ("..\\..\\x.png", png(200), "x.png"),
        ("a/b/c.png", png(300), "c.png"),
    ];
    for (name, bytes, expected) in &cases {
        let body = upload(
            &app,
            &ana.token,
            name,
            "application/octet-stream",
            bytes.clone(),
        )
        .await;
        let file_name = body["fileName"].as_str().unwrap();
        assert!(
            !file_name.contains('/') && !file_name.contains('\\') && !file_name.contains(".."),
            "{name} kept as {file_name}"
        );
        assert_eq!(file_name, *expected, "{name}");
        let (status, served) = fetch_bytes(&app, body["url"].as_str().unwrap(), None).await;
        assert_eq!((status, &served), (200, bytes), "{name}");
        for base in [
            data_dir.clone(),
            data_dir.join("files"),
            data_dir.join("tmp"),
        ] {
            assert!(!base.join(name).exists(), "{name} written under {base:?}");
        }
    }
    assert!(!std::path::Path::new("/etc/passwd.txt").exists());
    assert_eq!(stored_files(&app).len(), 3);
    // Stored names are generated: no original name (or piece of one) on disk.
    for path in files_under(&data_dir) {
        let stored = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            !stored.contains('\\') && !["passwd.txt", "x.png", "c.png"].contains(&stored.as_str()),
            "original name used on disk: {path:?}"
        );
    }
    assert!(!data_dir.join("files").join("a").exists());
}

#[tokio::test]
async fn profile_image_becomes_a_public_avatar() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let image = png(1234);
    let body = post_expect(
        &app,
        &ana.token,
        "/api/users/me/profile-image",
        &[file_part("me.png", "image/png", image.clone())],
        200,
    )
    .await;
    let url = body["profile_image"].as_str().unwrap().to_string();
    assert!(url.contains("/files/") && !url.contains("sig="), "{url}");
    let me = app
        .gql_ok(Some(&ana.token), "{ me { avatarUrl } }", json!({}))
        .await;
    assert_eq!(me["me"]["avatarUrl"], url.as_str());
    let response = fetch(&app, &url, None, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "image/png");
    assert_eq!(response.bytes().await.unwrap().as_ref(), &image[..]);

    // The same through GraphQL: uploadAvatar(file) returns the user.
    let response = gql_multipart(
        &app,
        &ana.token,
        json!({ "query": "mutation($f: Upload!) { uploadAvatar(file: $f) { id avatarUrl } }", "variables": { "f": null } }),
        json!({ "0": ["variables.f"] }),
        vec![named_file_part("0", "new.jpg", "image/jpeg", jpeg(800))],
    )
    .await;
    assert!(response["errors"].is_null(), "{response}");
    let user = &response["data"]["uploadAvatar"];
    assert_eq!(user["id"], ana.id.as_str());
    let new_url = user["avatarUrl"].as_str().unwrap();
    assert_ne!(new_url, url);
    let me = app
        .gql_ok(Some(&ana.token), "{ me { avatarUrl } }", json!({}))
        .await;
    assert_eq!(me["me"]["avatarUrl"], new_url);
    let (status, served) = fetch_bytes(&app, new_url, None).await;
    assert_eq!((status, served.len()), (200, 800));
}

#[tokio::test]
async fn group_image_is_for_admins_of_groups_and_rooms() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cara = app.register("cara").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;
    let room = create_room(&app, &ana.token, "Lobby", false).await;
    join_room(&app, &ben.token, &room).await;
    for chat_id in [&group, &room] {
        let path = format!("/api/chats/{chat_id}/group-image");
        let image = || [file_part("logo.png", "image/png", png(700))];
        post_expect(&app, &ben.token, &path, &image(), 403).await;
        if chat_id == &group {
            post_expect(&app, &cara.token, &path, &image(), 404).await;
        }
        let not_image = [file_part("logo.png", "image/png", pdf())];
        post_expect(&app, &ana.token, &path, &not_image, 415).await;
        assert!(chat(&app, &ana.token, chat_id, "imageUrl").await["imageUrl"].is_null());

        let body = post_expect(&app, &ana.token, &path, &image(), 200).await;
        let url = body["image_url"].as_str().unwrap();
        let set = chat(&app, &ana.token, chat_id, "imageUrl").await["imageUrl"].clone();
        let set = set.as_str().expect("imageUrl set");
        // Signed links may be issued afresh on every read: compare the file paths.
        assert_eq!(without_query(set), without_query(url));
        for link in [url, set] {
            let (status, served) = fetch_bytes(&app, link, None).await;
            assert_eq!((status, served.len()), (200, 700), "{link}");
        }
    }
    assert_eq!(stored_files(&app).len(), 2);
}

async fn send_with_attachments(app: &TestApp, token: &str, chat: &str, ids: Value) -> Value {
    app.gql(
        Some(token),
        "mutation($chat: ID!, $ids: [ID!]) { sendMessage(input: {chatId: $chat, content: \"\", attachmentIds: $ids}) { id kind content attachments { id url fileName contentType size } } }",
        json!({ "chat": chat, "ids": ids }),
    )
    .await
}

#[tokio::test]
async fn graphql_upload_file_then_send_message_with_attachment_ids() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;
    let image = png(2048);
    let response = gql_multipart(
        &app,
        &ana.token,
        json!({ "query": "mutation($f: Upload!){ uploadFile(file: $f){ id url contentType size fileName } }", "variables": { "f": null } }),
        json!({ "0": ["variables.f"] }),
        vec![named_file_part("0", "cat.png", "image/png", image.clone())],
    )
    .await;
    assert!(response["errors"].is_null(), "{response}");
    let uploaded = response["data"]["uploadFile"].clone();
    assert_attachment(&uploaded, "image/png", image.len(), "cat.png");
    let id = uploaded["id"].as_str().unwrap();

    let sent = send_with_attachments(&app, &ana.token, &group, json!([id])).await;
    assert!(sent["errors"].is_null(), "{sent}");
    let message = &sent["data"]["sendMessage"];
    assert_eq!(message["kind"], "IMAGE");
    assert!(
        [json!(""), Value::Null].contains(&message["content"]),
        "{message}"
    );
    assert_eq!(message["attachments"][0]["id"], id);
    assert_eq!(message["attachments"][0]["fileName"], "cat.png");

    let list = app
        .gql_ok(
            Some(&ben.token),
            "query($id: ID!) { messages(chatId: $id, first: 10) { nodes { kind attachments { id url contentType size } } } }",
            json!({ "id": group }),
        )
        .await;
    let node = &list["messages"]["nodes"][0];
    assert_eq!(node["kind"], "IMAGE", "{list}");
    assert_eq!(node["attachments"][0]["id"], id);
    let (status, served) =
        fetch_bytes(&app, node["attachments"][0]["url"].as_str().unwrap(), None).await;
    assert_eq!((status, served), (200, image));

    // Kind follows the first attachment.
    let audio = upload(&app, &ana.token, "v.wav", "audio/wav", wav(1)).await;
    let doc = upload(&app, &ana.token, "d.pdf", "application/pdf", pdf()).await;
    let sent =
        send_with_attachments(&app, &ana.token, &group, json!([audio["id"], doc["id"]])).await;
    assert_eq!(sent["data"]["sendMessage"]["kind"], "AUDIO", "{sent}");
    let other = upload(&app, &ana.token, "e.pdf", "application/pdf", pdf()).await;
    let sent = send_with_attachments(&app, &ana.token, &group, json!([other["id"]])).await;
    assert_eq!(sent["data"]["sendMessage"]["kind"], "FILE", "{sent}");

    // Someone else's upload, and one already attached, are refused.
    let bens = upload(&app, &ben.token, "b.png", "image/png", png(100)).await;
    let refused = send_with_attachments(&app, &ana.token, &group, json!([bens["id"]])).await;
    assert_bad_input(&refused, Some("attachmentIds"));
    let again = send_with_attachments(&app, &ana.token, &group, json!([id])).await;
    assert_bad_input(&again, None);
}
