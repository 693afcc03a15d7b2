//! What uploads may leave and what counts as text: temporary files left by a crash are swept when
//! an instance starts (never those of a live instance sharing the data directory), and a file
//! stored as `text/plain` is text through and through: NUL bytes anywhere or an executable's
//! magic number make a 415.
use crate::{
    files::{assert_attachment, assert_nothing_stored, file_part, post_expect, temp_files, upload},
    helpers::{spawn_app, spawn_with_config, test_config},
};

#[tokio::test]
async fn temporary_files_left_by_a_crash_are_swept_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let tmp = data_dir.join("tmp");
    // A loose file (the layout before per-process directories) and the directory of a process
    // that died mid-upload: its lock file exists but nobody holds it.
    let loose = tmp.join("0b9d3a4e.part");
    let dead = tmp.join("5f1c2d0e6a7b4c8d9e0f1a2b3c4d5e6f");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(&loose, b"half an upload").unwrap();
    std::fs::write(dead.join(".lock"), b"").unwrap();
    std::fs::write(dead.join("c4a1.part"), vec![7u8; 4096]).unwrap();

    let mut config = test_config(dir.path()).await;
    config.data_dir = data_dir.clone();
    let first = spawn_with_config(config).await;
    assert!(!loose.exists(), "loose temporary file swept");
    assert!(!dead.exists(), "a dead process's directory swept");
    assert_eq!(temp_files(&first), Vec::<std::path::PathBuf>::new());

    // An upload in progress on a live instance survives another instance starting on the same
    // data directory (a shared volume).
    let mut in_progress = first.state.storage.temp().await.unwrap();
    in_progress.write(b"still arriving").await.unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let mut second_config = test_config(other_dir.path()).await;
    second_config.data_dir = data_dir.clone();
    let second = spawn_with_config(second_config).await;
    assert_eq!(
        temp_files(&first).len(),
        1,
        "the live instance's upload is kept"
    );

    // Uploads still work on both, and leave nothing behind.
    let ana = first.register("ana").await;
    upload(&first, &ana.token, "a.txt", "text/plain", b"hi".to_vec()).await;
    drop(in_progress);
    assert_eq!(temp_files(&first), Vec::<std::path::PathBuf>::new());
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn text_files_must_be_text() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let mut elf16 = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    elf16.resize(16, 0);
    let mut late_nul = "a line of text\n".repeat(1000).into_bytes();
    late_nul.extend(b"then a \0 NUL");
    let mut late_binary = "a line of text\n".repeat(1000).into_bytes();
    late_binary.extend([0xff, 0xfe, 0xfd]);
    let cases = [
        ("elf16", elf16),
        (
            "elf magic, then text",
            b"\x7fELF is what this says".to_vec(),
        ),
        ("MZ, then text", b"MZ\x90 this runs on Windows".to_vec()),
        ("NUL after the sniffed head", late_nul),
        ("invalid UTF-8 after the sniffed head", late_binary),
    ];
    for (what, bytes) in cases {
        let body = post_expect(
            &app,
            &ana.token,
            "/api/upload",
            &[file_part("notes.txt", "text/plain", bytes)],
            415,
        )
        .await;
        assert!(body["detail"].is_string(), "{what}: {body}");
        assert_nothing_stored(&app, 0, what).await;
    }

    // Real text, long and multilingual, is still text.
    let text = "سلام، goftgu — text across many chunks\n".repeat(2000);
    let stored = upload(
        &app,
        &ana.token,
        "notes.txt",
        "application/octet-stream",
        text.clone().into_bytes(),
    )
    .await;
    assert_attachment(&stored, "text/plain", text.len(), "notes.txt");
}
