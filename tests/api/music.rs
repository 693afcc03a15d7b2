//! Music end to end: /music/upload, listing, streaming with Range, deletion rights, the GraphQL
//! track operations, audio-only and the separate music size limit.
use serde_json::{Value, json};

use crate::{
    file_bytes::{elf, mp3, pdf, png, wav, wav_sized},
    files::{
        assert_nothing_stored, assert_ranges, assert_signed, fetch, fetch_bytes, file_part,
        gql_multipart, json_with_status, named_file_part, post_expect, post_parts, stored_files,
        text_part, upload,
    },
    fixtures::{create_room, invite, join_room, strings},
    helpers::{TestApp, error_code, spawn_app, spawn_with_config, test_config},
};

const TRACK_FIELDS: &str =
    "id title durationSeconds url contentType size uploader { username } room { id } createdAt";

/// Uploads `bytes` to /music/upload with optional room and title; the response.
async fn upload_track(
    app: &TestApp,
    token: &str,
    room: Option<&str>,
    title: Option<&str>,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let mut parts = Vec::new();
    if let Some(room) = room {
        parts.push(text_part("room_id", room));
    }
    if let Some(title) = title {
        parts.push(text_part("title", title));
    }
    parts.push(file_part("track.wav", "audio/wav", bytes));
    post_parts(app, token, "/music/upload", &parts).await
}

/// GETs a JSON list from /music/…; (status, body).
async fn music_get(app: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let response = fetch(app, path, Some(token), None).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The titles in `GET /music/{query}` as `token`'s user.
async fn listed_titles(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, body) = music_get(app, token, &format!("/music/{query}")).await;
    assert_eq!(status, 200, "/music/{query}: {body}");
    let mut titles = strings(&body["tracks"], "title");
    titles.sort();
    titles
}

async fn delete_track(app: &TestApp, token: &str, id: &str) -> u16 {
    app.client
        .delete(format!("{}/music/{id}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Asserts a track JSON object's shape and values.
fn assert_track(track: &Value, title: &str, room: Option<&str>, uploader: &str, size: usize) {
    for key in ["id", "url", "contentType", "createdAt"] {
        assert!(track[key].is_string(), "{key} in {track}");
    }
    assert_eq!(track["title"], title, "{track}");
    assert_eq!(track["roomId"], json!(room), "{track}");
    assert_eq!(track["uploaderId"], uploader, "{track}");
    assert_eq!(track["size"], size as u64, "{track}");
    assert!(
        track["contentType"].as_str().unwrap().starts_with("audio/"),
        "{track}"
    );
    assert!(track.get("durationSeconds").is_some(), "{track}");
    assert_signed(track["url"].as_str().unwrap());
}

#[tokio::test]
async fn music_upload_list_stream_and_delete() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cara = app.register("cara").await;
    let room = create_room(&app, &ana.token, "Music", false).await;
    join_room(&app, &ben.token, &room).await;
    join_room(&app, &cara.token, &room).await;

    let song = wav(2);
    let response = upload_track(&app, &ben.token, Some(&room), Some("Song A"), song.clone()).await;
    let track = json_with_status(response, 201, "upload").await;
    assert_track(&track, "Song A", Some(&room), &ben.id, song.len());
    if let Some(seconds) = track["durationSeconds"].as_f64() {
        assert!((seconds - 2.0).abs() < 0.1, "a 2 s WAV: {track}");
    }
    let id = track["id"].as_str().unwrap().to_string();
    let solo = upload_track(&app, &ana.token, None, Some("Solo"), mp3(20)).await;
    let solo = json_with_status(solo, 201, "upload without a room").await;
    assert!(solo["roomId"].is_null(), "{solo}");

    assert_eq!(
        listed_titles(&app, &ana.token, "").await,
        ["Solo", "Song A"]
    );
    assert_eq!(
        listed_titles(&app, &ben.token, "").await,
        ["Song A"],
        "not ana's own"
    );
    let in_room = format!("?room_id={room}");
    assert_eq!(listed_titles(&app, &ana.token, &in_room).await, ["Song A"]);
    let (_, body) = music_get(&app, &cara.token, &format!("/music/{in_room}")).await;
    assert_track(
        &body["tracks"][0],
        "Song A",
        Some(&room),
        &ben.id,
        song.len(),
    );

    assert_ranges(
        &app,
        &format!("/music/{id}"),
        Some(&cara.token),
        &song,
        "audio/",
    )
    .await;
    let (status, served) = fetch_bytes(&app, track["url"].as_str().unwrap(), None).await;
    assert_eq!(
        (status, served),
        (200, song),
        "the signed url needs no header"
    );

    assert_eq!(
        delete_track(&app, &cara.token, &id).await,
        403,
        "plain member"
    );
    assert_eq!(delete_track(&app, &ben.token, &id).await, 204, "uploader");
    let gone = fetch(&app, &format!("/music/{id}"), Some(&ben.token), None).await;
    assert_eq!(gone.status(), 404);
    assert_eq!(
        fetch(&app, track["url"].as_str().unwrap(), None, None)
            .await
            .status(),
        404
    );
    assert_eq!(
        delete_track(&app, &ben.token, &id).await,
        404,
        "already deleted"
    );
    assert_eq!(listed_titles(&app, &ana.token, "").await, ["Solo"]);
}

#[tokio::test]
async fn private_room_music_is_hidden_and_room_admins_may_delete() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let dan = app.register("dan").await;
    let room = create_room(&app, &ana.token, "Secret", true).await;
    invite(&app, &ana.token, &room, &["ben"]).await;
    join_room(&app, &ben.token, &room).await;
    let track = upload_track(&app, &ben.token, Some(&room), Some("Hidden"), wav(1)).await;
    let track = json_with_status(track, 201, "member upload").await;
    let id = track["id"].as_str().unwrap();

    let stranger = upload_track(&app, &dan.token, Some(&room), Some("Intruder"), wav(1)).await;
    json_with_status(stranger, 404, "stranger uploads to a private room").await;
    let public = create_room(&app, &ana.token, "Open", false).await;
    let not_joined = upload_track(&app, &dan.token, Some(&public), Some("Early"), wav(1)).await;
    json_with_status(not_joined, 403, "public room not joined").await;
    assert_eq!(stored_files(&app).len(), 1, "refused uploads store nothing");

    assert!(listed_titles(&app, &dan.token, "").await.is_empty());
    let (status, body) = music_get(&app, &dan.token, &format!("/music/?room_id={room}")).await;
    assert_eq!(status, 404, "{body}");
    let stream = fetch(&app, &format!("/music/{id}"), Some(&dan.token), None).await;
    assert_eq!(stream.status(), 404);
    assert_eq!(delete_track(&app, &dan.token, id).await, 404);

    assert_eq!(delete_track(&app, &ana.token, id).await, 204, "room admin");
    assert!(listed_titles(&app, &ben.token, "").await.is_empty());
}

#[tokio::test]
async fn music_takes_only_audio_within_its_own_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    config.max_upload_bytes = 16 * 1024;
    config.max_music_bytes = 64 * 1024;
    let app = spawn_with_config(config).await;
    let ana = app.register("ana").await;

    for (name, bytes) in [("a.png", png(2000)), ("a.pdf", pdf()), ("a.elf", elf(2000))] {
        let parts = [file_part(name, "audio/mpeg", bytes)];
        let body = post_expect(&app, &ana.token, "/music/upload", &parts, 415).await;
        assert!(body["detail"].is_string(), "{name}: {body}");
    }
    let over = upload_track(
        &app,
        &ana.token,
        None,
        Some("Over"),
        wav_sized(64 * 1024 + 1),
    )
    .await;
    json_with_status(over, 413, "music over max_music_bytes").await;
    assert_nothing_stored(&app, 0, "refused music").await;

    // Music has its own limit: 32 KiB is fine here but too big for /api/upload.
    let mid = wav_sized(32 * 1024);
    let track = upload_track(&app, &ana.token, None, Some("Mid"), mid.clone()).await;
    json_with_status(track, 201, "32 KiB track").await;
    let too_big = [file_part("mid.wav", "audio/wav", mid)];
    post_expect(&app, &ana.token, "/api/upload", &too_big, 413).await;
    let exact = upload_track(&app, &ana.token, None, Some("Max"), wav_sized(64 * 1024)).await;
    json_with_status(exact, 201, "exactly max_music_bytes").await;
    upload(&app, &ana.token, "ok.png", "image/png", png(16 * 1024)).await;
    assert_eq!(stored_files(&app).len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn graphql_upload_track_tracks_track_and_delete_track() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cara = app.register("cara").await;
    let dan = app.register("dan").await;
    let room = create_room(&app, &ana.token, "Club", true).await;
    invite(&app, &ana.token, &room, &["ben", "cara"]).await;
    join_room(&app, &ben.token, &room).await;
    join_room(&app, &cara.token, &room).await;

    let song = wav(1);
    let response = gql_multipart(
        &app,
        &ben.token,
        json!({
            "query": format!("mutation($f: Upload!, $room: ID, $title: String) {{ uploadTrack(file: $f, roomId: $room, title: $title) {{ {TRACK_FIELDS} }} }}"),
            "variables": { "f": null, "room": room, "title": "Night" }
        }),
        json!({ "0": ["variables.f"] }),
        vec![named_file_part("0", "night.wav", "audio/wav", song.clone())],
    )
    .await;
    assert!(response["errors"].is_null(), "{response}");
    let track = response["data"]["uploadTrack"].clone();
    assert_eq!(track["title"], "Night");
    assert_eq!(track["uploader"]["username"], "ben");
    assert_eq!(track["room"]["id"], room.as_str());
    assert_eq!(track["size"], song.len() as u64);
    assert_signed(track["url"].as_str().unwrap());
    let id = track["id"].as_str().unwrap().to_string();
    let (status, served) = fetch_bytes(&app, track["url"].as_str().unwrap(), None).await;
    assert_eq!((status, served), (200, song));
    // A second track, uploaded over REST, for paging.
    let second = upload_track(&app, &ana.token, Some(&room), Some("Day"), mp3(10)).await;
    json_with_status(second, 201, "second track").await;

    let tracks = "query($room: ID, $after: String) { tracks(roomId: $room, first: 1, after: $after) { nodes { id title room { id } } pageInfo { hasNextPage endCursor } } }";
    let page = app
        .gql_ok(Some(&cara.token), tracks, json!({ "room": room }))
        .await;
    let first = &page["tracks"];
    assert_eq!(first["nodes"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(first["pageInfo"]["hasNextPage"], true, "{page}");
    let after = first["pageInfo"]["endCursor"].clone();
    let page = app
        .gql_ok(
            Some(&cara.token),
            tracks,
            json!({ "room": room, "after": after }),
        )
        .await;
    let mut titles = strings(&first["nodes"], "title");
    titles.extend(strings(&page["tracks"]["nodes"], "title"));
    titles.sort();
    assert_eq!(titles, ["Day", "Night"]);
    let all = app.gql_ok(Some(&cara.token), tracks, json!({})).await;
    assert_eq!(
        all["tracks"]["nodes"].as_array().unwrap().len(),
        1,
        "first: 1"
    );

    let one = "query($id: ID!) { track(id: $id) { id title uploader { username } } }";
    let found = app
        .gql_ok(Some(&cara.token), one, json!({ "id": id }))
        .await;
    assert_eq!(found["track"]["title"], "Night");
    let hidden = app.gql(Some(&dan.token), one, json!({ "id": id })).await;
    if hidden["errors"].is_null() {
        assert!(hidden["data"]["track"].is_null(), "{hidden}");
    } else {
        assert_eq!(error_code(&hidden), "NOT_FOUND", "{hidden}");
    }

    let delete = "mutation($id: ID!) { deleteTrack(id: $id) }";
    let refused = app
        .gql(Some(&cara.token), delete, json!({ "id": id }))
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let deleted = app
        .gql_ok(Some(&ben.token), delete, json!({ "id": id }))
        .await;
    assert_eq!(deleted["deleteTrack"], true);
    let after = app.gql(Some(&ben.token), one, json!({ "id": id })).await;
    assert!(after["data"]["track"].is_null(), "{after}");
    let gone = fetch(&app, &format!("/music/{id}"), Some(&ben.token), None).await;
    assert_eq!(gone.status(), 404);

    // Not audio through GraphQL either.
    let before = stored_files(&app).len();
    let response = gql_multipart(
        &app,
        &ben.token,
        json!({ "query": "mutation($f: Upload!) { uploadTrack(file: $f) { id } }", "variables": { "f": null } }),
        json!({ "0": ["variables.f"] }),
        vec![named_file_part("0", "x.mp3", "audio/mpeg", png(500))],
    )
    .await;
    assert!(response["errors"].is_array(), "{response}");
    assert!(response["data"].is_null() || response["data"]["uploadTrack"].is_null());
    assert_nothing_stored(&app, before, "uploadTrack with a PNG").await;
}

/// The bytes of `tests/fixtures/audio/{name}` (made once with ffmpeg; see the README there).
fn audio_fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/audio/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Uploads `bytes` as `file_name` with `uploadTrack` (optionally titled); the whole response.
async fn gql_upload_track(
    app: &TestApp,
    token: &str,
    file_name: &str,
    title: Option<&str>,
    bytes: Vec<u8>,
) -> Value {
    let query = "mutation($f: Upload!, $title: String) { uploadTrack(file: $f, title: $title) { id title artist durationMs durationSeconds contentType } }";
    gql_multipart(
        app,
        token,
        json!({ "query": query, "variables": { "f": null, "title": title } }),
        json!({ "0": ["variables.f"] }),
        // The client's claimed type is ignored; the bytes decide.
        vec![named_file_part(
            "0",
            file_name,
            "application/octet-stream",
            bytes,
        )],
    )
    .await
}

#[tokio::test]
async fn track_length_title_and_artist_come_from_the_bytes() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    // (file, true length in ms, tolerance in ms, title tag, artist tag, detected type)
    let cases = [
        (
            "tone-vbrhdr.mp3",
            2000,
            30,
            Some("گفتگو"),
            Some("Ensemble Goftgu"),
            "audio/mpeg",
        ),
        // No Xing/VBRI header: estimated from the file length and the first frames' bitrate.
        (
            "tone-cbr.mp3",
            2500,
            100,
            Some("Plain Frames"),
            Some("No Xing"),
            "audio/mpeg",
        ),
        (
            "tone.ogg",
            1500,
            10,
            Some("Vorbis Tone"),
            Some("Ogg Artist"),
            "audio/ogg",
        ),
        (
            "tone.opus",
            1250,
            10,
            Some("Opus Tone"),
            Some("Opus Artist"),
            "audio/ogg",
        ),
        (
            "tone.flac",
            1000,
            5,
            Some("FLAC Tone"),
            Some("Lossless Artist"),
            "audio/x-flac",
        ),
        (
            "tone.m4a",
            1800,
            30,
            Some("M4A Tone"),
            Some("MP4 Artist"),
            "audio/m4a",
        ),
        // An audio-only MP4 with the generic `isom` brand is a track too.
        (
            "tone-isom.mp4",
            1200,
            30,
            Some("Generic Brand"),
            None,
            "audio/mp4",
        ),
        // Bare ADTS has no tags; its length is estimated from the frames.
        ("tone.aac", 1600, 120, None, None, "audio/aac"),
        // symphonia 0.6.1 drops a WAV's LIST/INFO tags (upstream issue #552): the file name.
        ("tone.wav", 750, 5, None, None, "audio/x-wav"),
    ];
    for (name, ms, tolerance, title, artist, content_type) in cases {
        let response = gql_upload_track(&app, &ana.token, name, None, audio_fixture(name)).await;
        assert!(response["errors"].is_null(), "{name}: {response}");
        let track = &response["data"]["uploadTrack"];
        let got = track["durationMs"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name}: no durationMs in {track}"));
        assert!(
            (got - ms).abs() <= tolerance,
            "{name}: {got} ms, not {ms} ± {tolerance}"
        );
        assert_eq!(
            track["durationSeconds"],
            (got + 500) / 1000,
            "{name}: rounded"
        );
        // Without a title tag the file name's stem is the title, as before.
        let stem = name.rsplit_once('.').unwrap().0;
        assert_eq!(track["title"], title.unwrap_or(stem), "{name}: {track}");
        assert_eq!(track["artist"], json!(artist), "{name}: {track}");
        assert_eq!(track["contentType"], content_type, "{name}: {track}");
    }

    // The client's title wins over the tag; the artist still comes from the tags.
    let titled = gql_upload_track(
        &app,
        &ana.token,
        "tone.ogg",
        Some("My Title"),
        audio_fixture("tone.ogg"),
    )
    .await;
    let titled = &titled["data"]["uploadTrack"];
    assert_eq!(titled["title"], "My Title", "{titled}");
    assert_eq!(titled["artist"], "Ogg Artist", "{titled}");
    let id = titled["id"].as_str().unwrap();
    let read_back = app
        .gql_ok(
            Some(&ana.token),
            "query($id: ID!) { track(id: $id) { title artist durationMs } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(read_back["track"], {
        let mut expected = titled.clone();
        for key in ["id", "durationSeconds", "contentType"] {
            expected.as_object_mut().unwrap().remove(key);
        }
        expected
    });
}

#[tokio::test]
async fn audio_it_cannot_read_still_uploads_and_video_mp4_does_not() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    // Sniffed as MP3 (an ID3 header) but nothing after it is audio.
    let mut junk = b"ID3\x04\0\0\0\0\0\x0a".to_vec();
    junk.extend((0..6000u32).map(|i| (i * 7 % 13) as u8 + 1));
    let response = gql_upload_track(&app, &ana.token, "mystery.mp3", None, junk).await;
    assert!(response["errors"].is_null(), "{response}");
    let track = &response["data"]["uploadTrack"];
    assert_eq!(
        (
            &track["title"],
            &track["artist"],
            &track["durationMs"],
            &track["durationSeconds"]
        ),
        (&json!("mystery"), &Value::Null, &Value::Null, &Value::Null),
        "{track}"
    );

    // Over REST the track JSON carries the same fields.
    let response = upload_track(&app, &ana.token, None, None, audio_fixture("tone.flac")).await;
    let track = json_with_status(response, 201, "FLAC over REST").await;
    assert_eq!(track["durationMs"], 1000, "{track}");
    assert_eq!(track["artist"], "Lossless Artist", "{track}");

    // An MP4 with a video track is not a track, whatever it is called.
    let before = stored_files(&app).len();
    let response = gql_upload_track(
        &app,
        &ana.token,
        "song.m4a",
        None,
        audio_fixture("clip.mp4"),
    )
    .await;
    assert_eq!(
        error_code(&response),
        "UNSUPPORTED_MEDIA_TYPE",
        "{response}"
    );
    assert_nothing_stored(&app, before, "an MP4 with video").await;
}
