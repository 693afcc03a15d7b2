//! Files on S3-compatible object storage (`GOFTGU_S3_*`), against a real S3 server: moto's
//! stand-alone server, started per test on a free port (and killed when the test ends). A file
//! uploaded through one instance downloads through another (its own data directory, the same
//! database and bucket) with Range; a music track streams; deleting a message or a track removes
//! its object; a refused upload leaves no object.
//!
//! The server's Python comes from GOFTGU_TEST_S3_PYTHON (`bash .ci/s3` makes the venv and
//! prints its interpreter; `.ci/run` exports it). When it is set the server must start and the
//! tests must pass; when it is unset (a plain `cargo test`) these tests say they were not run.
use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::TryStreamExt;
use goftgu::config::Config;
use object_store::{
    ObjectStore, ObjectStoreExt,
    aws::{AmazonS3, AmazonS3Builder},
    path::Path as Key,
};

use crate::{
    file_bytes::{png_patterned, wav_sized},
    files::{
        assert_nothing_stored, assert_ranges, fetch, file_part, header, json_with_status,
        post_expect, post_parts, stored_files, temp_files, text_part, upload,
    },
    fixtures::{create_group, delete},
    helpers::{TestApp, free_port, spawn_with_config, test_config},
};

const BUCKET: &str = "goftgu-files";
/// Bigger than one part of a multipart upload (8 MiB), so the upload goes up in two parts.
const MULTIPART: usize = 9 * 1024 * 1024 + 123;

/// moto's server: its process (killed on drop) and its endpoint.
struct S3Server {
    child: Child,
    endpoint: String,
    client: reqwest::Client,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's interpreter, or `None` with a line saying why the test is not run.
fn s3_python() -> Option<String> {
    match std::env::var("GOFTGU_TEST_S3_PYTHON") {
        Ok(python) if !python.is_empty() => Some(python),
        _ => {
            eprintln!(
                "object storage test not run: GOFTGU_TEST_S3_PYTHON is not set (`bash .ci/s3` \
                 installs moto's S3 server into target/s3-venv and prints the interpreter to set \
                 it to)"
            );
            None
        }
    }
}

impl S3Server {
    /// Starts moto on a free port and creates the bucket; panics when it cannot.
    async fn start(python: &str) -> Self {
        let port = free_port();
        let child = Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("GOFTGU_TEST_S3_PYTHON={python} cannot run: {e}"));
        let mut server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().expect("moto's status") {
                panic!("moto's S3 server exited at start ({status}): is moto[server] installed?");
            }
            if server.client.get(&server.endpoint).send().await.is_ok() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "moto's S3 server did not answer on {} within 60 s",
                server.endpoint
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = server.client.put(server.url("")).send().await.unwrap();
        assert!(created.status().is_success(), "create bucket: {created:?}");
        server
    }

    /// `<endpoint>/<bucket>/<key>` (path-style).
    fn url(&self, key: &str) -> String {
        format!("{}/{BUCKET}/{key}", self.endpoint)
    }

    /// A signed client of the bucket, to look at it directly (moto refuses unsigned reads).
    fn bucket(&self) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .build()
            .expect("an S3 client")
    }

    /// Every key in the bucket.
    async fn keys(&self) -> Vec<String> {
        let listed: Vec<_> = self.bucket().list(None).try_collect().await.unwrap();
        listed
            .into_iter()
            .map(|meta| meta.location.to_string())
            .collect()
    }

    /// 200 when `key` exists, 404 when it does not.
    async fn status_of(&self, key: &str) -> u16 {
        match self.bucket().head(&Key::from(key)).await {
            Ok(_) => 200,
            Err(object_store::Error::NotFound { .. }) => 404,
            Err(err) => panic!("HEAD {key}: {err}"),
        }
    }

    /// The ETag of `key`: a multipart upload's is `"<md5 of the parts' md5s>-<parts>"`.
    async fn etag_of(&self, key: &str) -> String {
        let meta = self.bucket().head(&Key::from(key)).await.unwrap();
        meta.e_tag.unwrap_or_default()
    }

    /// Points `config` at the bucket, under `prefix`.
    fn configure(&self, config: &mut Config, prefix: &str) {
        config.s3.bucket = Some(BUCKET.into());
        config.s3.endpoint = Some(self.endpoint.clone());
        config.s3.access_key_id = Some("testing".into());
        config.s3.secret_access_key = Some("testing".into());
        config.s3.prefix = prefix.into();
    }
}

/// Two instances with their own data directories, one database and one bucket.
struct Pair {
    a: TestApp,
    b: TestApp,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

async fn two_instances(s3: &S3Server, prefix: &str) -> Pair {
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut config_a = test_config(dirs.0.path()).await;
    s3.configure(&mut config_a, prefix);
    let mut config_b = config_a.clone();
    config_b.data_dir = dirs.1.path().to_path_buf();
    let a = spawn_with_config(config_a).await;
    let b = spawn_with_config(config_b).await;
    Pair { a, b, _dirs: dirs }
}

/// One range across the boundary of the first two parts of a multipart upload.
async fn assert_part_boundary(app: &TestApp, url: &str, token: Option<&str>, bytes: &[u8]) {
    let (first, last) = (8 * 1024 * 1024 - 100, 8 * 1024 * 1024 + 99);
    let range = format!("bytes={first}-{last}");
    let response = fetch(app, url, token, Some(&range)).await;
    assert_eq!(response.status(), 206, "{range}");
    assert_eq!(
        header(&response, "content-range"),
        format!("bytes {first}-{last}/{}", bytes.len())
    );
    let body = response.bytes().await.unwrap();
    assert_eq!(body.as_ref(), &bytes[first..=last], "{range}");
}

#[tokio::test]
async fn a_file_uploaded_through_one_instance_downloads_through_another_with_range() {
    let Some(python) = s3_python() else { return };
    let s3 = S3Server::start(&python).await;
    let pair = two_instances(&s3, "deploy/one/").await;
    let ana = pair.a.register("ana_s3").await;

    let small = png_patterned(300_000);
    let uploaded = upload(&pair.a, &ana.token, "photo.png", "image/png", small.clone()).await;
    let url = uploaded["url"].as_str().unwrap().to_string();
    let keys = s3.keys().await;
    assert_eq!(keys.len(), 1, "one object: {keys:?}");
    assert!(
        keys[0].starts_with("deploy/one/"),
        "under the prefix: {keys:?}"
    );
    assert!(
        stored_files(&pair.a).is_empty() && temp_files(&pair.a).is_empty(),
        "nothing on A's disk"
    );
    // The signed link and the uploader's token both work on B, which never saw the bytes.
    assert_ranges(&pair.b, &url, None, &small, "image/png").await;
    let plain = url.split('?').next().unwrap();
    assert_ranges(&pair.b, plain, Some(&ana.token), &small, "image/png").await;
    let full = fetch(&pair.b, &url, None, None).await;
    assert_eq!(
        header(&full, "content-disposition"),
        "inline; filename=\"photo.png\""
    );
    assert!(!header(&full, "last-modified").is_empty());
    let unsatisfiable = fetch(&pair.b, &url, None, Some("bytes=400000-500000")).await;
    assert_eq!(unsatisfiable.status(), 416);
    assert_eq!(header(&unsatisfiable, "content-range"), "bytes */300000");

    // A file bigger than one part goes up as a multipart upload and reads back whole.
    let big = png_patterned(MULTIPART);
    let uploaded = upload(&pair.b, &ana.token, "big.png", "image/png", big.clone()).await;
    let url = uploaded["url"].as_str().unwrap().to_string();
    let new_keys: Vec<String> = s3
        .keys()
        .await
        .into_iter()
        .filter(|k| !keys.contains(k))
        .collect();
    assert_eq!(new_keys.len(), 1, "{new_keys:?}");
    assert!(
        s3.etag_of(&new_keys[0]).await.ends_with("-2\""),
        "uploaded in two parts"
    );
    assert!(
        !s3.etag_of(&keys[0]).await.contains('-'),
        "the small file in one PUT"
    );
    assert_ranges(&pair.a, &url, None, &big, "image/png").await;
    assert_part_boundary(&pair.a, &url, None, &big).await;
    assert!(stored_files(&pair.b).is_empty(), "nothing on B's disk");
}

#[tokio::test]
async fn music_streams_from_the_bucket_and_deleting_removes_the_objects() {
    let Some(python) = s3_python() else { return };
    let s3 = S3Server::start(&python).await;
    let pair = two_instances(&s3, "").await;
    let ana = pair.a.register("ana_music").await;

    let track = wav_sized(MULTIPART);
    let parts = [
        text_part("title", "Long"),
        file_part("long.wav", "audio/wav", track.clone()),
    ];
    let created = post_expect(&pair.a, &ana.token, "/music/upload", &parts, 201).await;
    let id = created["id"].as_str().unwrap();
    let keys = s3.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(s3.status_of(&keys[0]).await, 200);
    let stream = format!("/music/{id}");
    assert_ranges(&pair.b, &stream, Some(&ana.token), &track, "audio/").await;
    assert_part_boundary(&pair.b, &stream, Some(&ana.token), &track).await;

    let deleted = pair
        .b
        .client
        .delete(format!("{}/music/{id}", pair.b.address))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{deleted:?}");
    assert_eq!(s3.status_of(&keys[0]).await, 404, "the track's object");
    assert_eq!(
        fetch(&pair.a, &stream, Some(&ana.token), None)
            .await
            .status(),
        404
    );

    // A file message: deleting the message removes its attachment's object.
    let group = create_group(&pair.a, &ana.token, "s3 group", &[]).await;
    let parts = [
        text_part("content", "a picture"),
        file_part("p.png", "image/png", png_patterned(50_000)),
    ];
    let path = format!("/api/chats/{group}/messages/file");
    let message = json_with_status(
        post_parts(&pair.a, &ana.token, &path, &parts).await,
        201,
        "file message",
    )
    .await;
    let keys = s3.keys().await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let url = message["attachments"][0]["url"].as_str().unwrap();
    assert_eq!(fetch(&pair.b, url, None, None).await.status(), 200);
    delete(&pair.b, &ana.token, message["id"].as_str().unwrap()).await;
    assert_eq!(s3.status_of(&keys[0]).await, 404, "the attachment's object");
    assert!(s3.keys().await.is_empty());
}

#[tokio::test]
async fn a_refused_upload_leaves_no_object() {
    let Some(python) = s3_python() else { return };
    let s3 = S3Server::start(&python).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path()).await;
    s3.configure(&mut config, "");
    config.max_upload_bytes = 64 * 1024;
    let app = spawn_with_config(config).await;
    let ana = app.register("ana_limit").await;

    let over = [file_part(
        "big.png",
        "image/png",
        png_patterned(64 * 1024 + 1),
    )];
    post_expect(&app, &ana.token, "/api/upload", &over, 413).await;
    let refused_type = [file_part("x.bin", "application/octet-stream", vec![0u8; 0])];
    post_expect(&app, &ana.token, "/api/upload", &refused_type, 400).await;
    assert_nothing_stored(&app, 0, "refused uploads").await;
    assert!(s3.keys().await.is_empty(), "no object");

    let exact = [file_part("max.png", "image/png", png_patterned(64 * 1024))];
    post_expect(&app, &ana.token, "/api/upload", &exact, 201).await;
    assert_eq!(s3.keys().await.len(), 1);
}
