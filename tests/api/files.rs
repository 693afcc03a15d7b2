//! Shared by the upload, download and music tests: multipart/form-data bodies built by hand
//! (this reqwest has no `multipart` feature, and by hand a body can also be cut off mid-file),
//! download checks (signed links, Range) and readers for the data directory.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use reqwest::Response;
use serde_json::Value;

use crate::helpers::TestApp;

/// The multipart boundary every body here uses.
pub const BOUNDARY: &str = "----goftgu-test-7MA4YWxkTrZu0gW";

/// The default `max_upload_bytes`: 10 MiB.
pub const TEN_MB: usize = 10 * 1024 * 1024;

/// One part of a multipart/form-data body.
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

/// The part named `file`.
pub fn file_part(file_name: &str, content_type: &str, data: Vec<u8>) -> Part {
    named_file_part("file", file_name, content_type, data)
}

/// A file part with any field name (GraphQL multipart uses "0", "1", …).
pub fn named_file_part(name: &str, file_name: &str, content_type: &str, data: Vec<u8>) -> Part {
    Part {
        name: name.to_string(),
        file_name: Some(file_name.to_string()),
        content_type: Some(content_type.to_string()),
        data,
    }
}

/// A plain text field.
pub fn text_part(name: &str, value: &str) -> Part {
    Part {
        name: name.to_string(),
        file_name: None,
        content_type: None,
        data: value.as_bytes().to_vec(),
    }
}

/// The parts framed by `BOUNDARY`, with the closing boundary.
pub fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{}\"", part.name);
        if let Some(file_name) = &part.file_name {
            disposition.push_str(&format!("; filename=\"{file_name}\""));
        }
        body.extend(disposition.as_bytes());
        body.extend(b"\r\n");
        if let Some(content_type) = &part.content_type {
            body.extend(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend(b"\r\n");
        body.extend(&part.data);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// POSTs a prepared multipart body (it may be malformed on purpose).
pub async fn post_body(app: &TestApp, token: Option<&str>, path: &str, body: Vec<u8>) -> Response {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

/// POSTs `parts` as multipart/form-data.
pub async fn post_parts(app: &TestApp, token: &str, path: &str, parts: &[Part]) -> Response {
    post_body(app, Some(token), path, multipart(parts)).await
}

/// POSTs `parts`, asserts `status` and returns the JSON body.
pub async fn post_expect(
    app: &TestApp,
    token: &str,
    path: &str,
    parts: &[Part],
    status: u16,
) -> Value {
    let response = post_parts(app, token, path, parts).await;
    json_with_status(response, status, path).await
}

/// Asserts the status, then parses the body as JSON (null when empty).
pub async fn json_with_status(response: Response, status: u16, what: &str) -> Value {
    let got = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(got, status, "{what}: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: not JSON: {text}"))
    }
}

/// Uploads one file to /api/upload and returns the attachment JSON (201 asserted).
pub async fn upload(app: &TestApp, token: &str, name: &str, mime: &str, data: Vec<u8>) -> Value {
    post_expect(
        app,
        token,
        "/api/upload",
        &[file_part(name, mime, data)],
        201,
    )
    .await
}

/// A GraphQL multipart request (operations, map, then the file parts); the JSON response.
pub async fn gql_multipart(
    app: &TestApp,
    token: &str,
    operations: Value,
    map: Value,
    files: Vec<Part>,
) -> Value {
    let mut parts = vec![
        text_part("operations", &operations.to_string()),
        text_part("map", &map.to_string()),
    ];
    parts.extend(files);
    let response = post_parts(app, token, "/graphql", &parts).await;
    json_with_status(response, 200, "graphql multipart").await
}

/// `url` (a server-relative path or an absolute URL) against the test server.
pub fn absolute(app: &TestApp, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_string()
    } else {
        format!("{}{url}", app.address)
    }
}

/// GETs `url`, optionally with a Bearer token and a Range header.
pub async fn fetch(app: &TestApp, url: &str, token: Option<&str>, range: Option<&str>) -> Response {
    let mut request = app.client.get(absolute(app, url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(range) = range {
        request = request.header("range", range);
    }
    request.send().await.expect("request sent")
}

/// GETs `url` and returns (status, bytes).
pub async fn fetch_bytes(app: &TestApp, url: &str, token: Option<&str>) -> (u16, Vec<u8>) {
    let response = fetch(app, url, token, None).await;
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// A response header as text ("" when absent).
pub fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// `url` without its query string (`/files/{id}`).
pub fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap()
}

/// `url` with the first character of its `sig` parameter changed.
pub fn tampered_signature(url: &str) -> String {
    let start = url
        .find("sig=")
        .unwrap_or_else(|| panic!("no sig in {url}"))
        + 4;
    let replacement = if url[start..].starts_with('a') {
        "b"
    } else {
        "a"
    };
    format!("{}{replacement}{}", &url[..start], &url[start + 1..])
}

/// Every regular file under `dir`, recursively (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Stored files: everything under `<data_dir>/files`.
pub fn stored_files(app: &TestApp) -> Vec<PathBuf> {
    files_under(&app.state.config.data_dir.join("files"))
}

/// Temporary upload files under `<data_dir>/tmp` (each instance's `.lock` marker is not one).
pub fn temp_files(app: &TestApp) -> Vec<PathBuf> {
    files_under(&app.state.config.data_dir.join("tmp"))
        .into_iter()
        .filter(|path| path.file_name().is_none_or(|name| name != ".lock"))
        .collect()
}

/// Asserts the store still holds `before` files and no temporary file is left (a short grace
/// period lets a temporary file's drop finish).
pub async fn assert_nothing_stored(app: &TestApp, before: usize, what: &str) {
    for _ in 0..20 {
        if temp_files(app).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        temp_files(app),
        Vec::<PathBuf>::new(),
        "{what}: temporary files left"
    );
    assert_eq!(
        stored_files(app).len(),
        before,
        "{what}: a file was stored: {:?}",
        stored_files(app)
    );
}

/// Asserts the common shape of an attachment JSON object.
pub fn assert_attachment(attachment: &Value, content_type: &str, size: usize, file_name: &str) {
    for key in ["id", "url", "contentType", "fileName"] {
        assert!(attachment[key].is_string(), "{key} in {attachment}");
    }
    assert!(
        attachment["contentType"]
            .as_str()
            .unwrap()
            .starts_with(content_type),
        "{attachment}"
    );
    assert_eq!(attachment["size"], size as u64, "{attachment}");
    assert_eq!(attachment["fileName"], file_name, "{attachment}");
    assert_signed(attachment["url"].as_str().unwrap());
}

/// Asserts `url` is a signed `/files/{id}?exp=…&sig=…` link.
pub fn assert_signed(url: &str) {
    let path = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    assert!(path.contains("/files/"), "{url}");
    assert!(
        url.contains("exp=") && url.contains("sig="),
        "not signed: {url}"
    );
}

/// Full GET and the Range cases of the contract on `url` (`bytes` is the whole file, ≥ 200 bytes).
pub async fn assert_ranges(
    app: &TestApp,
    url: &str,
    token: Option<&str>,
    bytes: &[u8],
    content_type: &str,
) {
    let size = bytes.len();
    let full = fetch(app, url, token, None).await;
    assert_eq!(full.status(), 200, "GET {url}");
    assert_eq!(header(&full, "accept-ranges"), "bytes", "{url}");
    assert_eq!(header(&full, "content-length"), size.to_string(), "{url}");
    assert!(
        header(&full, "content-type").starts_with(content_type),
        "{url}"
    );
    assert_eq!(header(&full, "x-content-type-options"), "nosniff", "{url}");
    assert_eq!(full.bytes().await.unwrap().as_ref(), bytes, "{url}");

    let cases = [
        ("bytes=0-9", 0, 9),
        ("bytes=100-199", 100, 199),
        ("bytes=-10", size - 10, size - 1),
    ];
    for (range, first, last) in cases {
        let response = fetch(app, url, token, Some(range)).await;
        assert_eq!(response.status(), 206, "{range} on {url}");
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes {first}-{last}/{size}"),
            "{range}"
        );
        let length = last - first + 1;
        assert_eq!(
            header(&response, "content-length"),
            length.to_string(),
            "{range}"
        );
        assert_eq!(header(&response, "accept-ranges"), "bytes", "{range}");
        assert!(
            header(&response, "content-type").starts_with(content_type),
            "{range}"
        );
        assert_eq!(
            header(&response, "x-content-type-options"),
            "nosniff",
            "{range}"
        );
        let body = response.bytes().await.unwrap();
        assert_eq!(body.as_ref(), &bytes[first..=last], "{range}");
    }
    let range = format!("bytes={size}-");
    let response = fetch(app, url, token, Some(&range)).await;
    assert_eq!(response.status(), 416, "{range} on {url}");
}
