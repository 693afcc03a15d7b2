//! Link previews against a local web server the settings allow by address and port: an Open
//! Graph page, a plain page and a redirect give previews (announced live); a redirect to another
//! loopback port, to a private address or to a link-local one is refused (the other port is
//! never reached); an oversized page is cut off before its tags, a slow one given up, a non-HTML
//! one ignored; a preview is cached per URL; an edit to another link replaces the preview.
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};

use crate::fixtures::{create_group, send};
use crate::helpers::{TestApp, spawn_app_with};
use crate::live::{MODERN, Socket};

const OG_PAGE: &str = r#"<!doctype html><html><head><title>Not this</title>
<meta property="og:title" content="Goftgu &amp; friends">
<meta property="og:description" content="Chat, rooms and music">
<meta property="og:image" content="/logo.png">
<meta property="og:site_name" content="goftgu.test">
</head><body>hello</body></html>"#;

/// A web server on a port of its own, counting its requests.
struct Site {
    port: u16,
    hits: Arc<AtomicUsize>,
}

fn html(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn redirect(to: String) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, to.parse().unwrap());
    (StatusCode::FOUND, headers).into_response()
}

async fn serve(other_port: u16) -> Site {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = Router::new()
        .route("/og", get(|| async { html(OG_PAGE.to_string()) }))
        .route(
            "/plain",
            get(|| async {
                html("<title>Plain page</title><meta name=description content='Just text'>".into())
            }),
        )
        .route("/hop", get(|| async { redirect("/og".into()) }))
        .route(
            "/other-port",
            get(move || async move { redirect(format!("http://127.0.0.1:{other_port}/og")) }),
        )
        .route(
            "/private",
            get(|| async { redirect("http://10.255.255.1/og".into()) }),
        )
        .route(
            "/link-local",
            get(|| async { redirect("http://169.254.169.254/latest/meta-data".into()) }),
        )
        .route(
            "/big",
            get(|| async { html(format!("<html>{}{OG_PAGE}", " ".repeat(256 * 1024))) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                html(OG_PAGE.to_string())
            }),
        )
        .route(
            "/json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{}").into_response() }),
        )
        .layer(axum::middleware::from_fn_with_state(
            counted,
            |State(hits): State<Arc<AtomicUsize>>, request, next: axum::middleware::Next| async move {
                hits.fetch_add(1, Ordering::SeqCst);
                next.run(request).await
            },
        ));
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Site { port, hits }
}

async fn outcome(app: &TestApp, name: &str) -> f64 {
    let body = crate::metrics::scrape(app).await;
    crate::metrics::sample(
        &body,
        &format!("goftgu_link_previews_total{{outcome=\"{name}\"}}"),
    )
}

/// Waits (at most 10 s) until `name` outcomes reach `count`.
async fn outcomes_reach(app: &TestApp, name: &str, count: f64) {
    for _ in 0..500 {
        if outcome(app, name).await >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{name} outcomes stayed below {count}");
}

async fn preview_of(app: &TestApp, token: &str, message: &str) -> Value {
    app.gql_ok(
        Some(token),
        "query($id: ID!) { message(id: $id) { linkPreview { url title description imageUrl siteName } } }",
        json!({ "id": message }),
    )
    .await["message"]["linkPreview"]
        .clone()
}

#[tokio::test]
async fn previews_come_from_allowed_pages_only_within_bounds() {
    let other = serve(1).await;
    let site = serve(other.port).await;
    let base = format!("http://127.0.0.1:{}", site.port);
    let allow = format!("127.0.0.1:{}", site.port);
    let (app, _dir) = spawn_app_with(move |c| {
        c.previews.allow = vec![allow];
        c.previews.max_bytes = 64 * 1024;
        c.previews.timeout_ms = 500;
    })
    .await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "club", &[]).await;
    let mut live = Socket::open(&app, &ana.token, MODERN).await;
    let events = "subscription($c: ID!) { chatEvents(chatId: $c) { __typename
        ... on LinkPreviewReady { message { content linkPreview { title siteName } } } } }";
    live.subscribe("c", events, json!({ "c": group })).await;

    let og = send(&app, &ana.token, &group, &format!("look: {base}/og.")).await;
    let created = live.event("c").await;
    assert_eq!(created["__typename"], "MessageCreated");
    let ready = live.event("c").await;
    assert_eq!(ready["__typename"], "LinkPreviewReady", "{ready}");
    assert_eq!(ready["message"]["linkPreview"]["title"], "Goftgu & friends");
    assert_eq!(
        preview_of(&app, &ana.token, &og).await,
        json!({
            "url": format!("{base}/og"),
            "title": "Goftgu & friends",
            "description": "Chat, rooms and music",
            "imageUrl": format!("{base}/logo.png"),
            "siteName": "goftgu.test"
        })
    );
    let hop = send(&app, &ana.token, &group, &format!("{base}/hop")).await;
    let plain = send(&app, &ana.token, &group, &format!("see {base}/plain")).await;
    outcomes_reach(&app, "ready", 3.0).await;
    assert_eq!(
        preview_of(&app, &ana.token, &hop).await["title"],
        "Goftgu & friends"
    );
    assert_eq!(
        preview_of(&app, &ana.token, &plain).await["description"],
        "Just text"
    );

    // Refused on the way, the other port never reached; cut off, slow and non-HTML give none.
    let mut none = Vec::new();
    for path in ["other-port", "private", "link-local", "big", "slow", "json"] {
        none.push(send(&app, &ana.token, &group, &format!("{base}/{path}")).await);
    }
    outcomes_reach(&app, "refused", 3.0).await;
    outcomes_reach(&app, "failed", 3.0).await;
    assert_eq!(
        other.hits.load(Ordering::SeqCst),
        0,
        "the other port was never asked"
    );
    for message in &none {
        assert_eq!(preview_of(&app, &ana.token, message).await, Value::Null);
    }

    // The same link again is served from the cache.
    let before = site.hits.load(Ordering::SeqCst);
    let again = send(&app, &ana.token, &group, &format!("again {base}/og")).await;
    outcomes_reach(&app, "cached", 1.0).await;
    assert_eq!(site.hits.load(Ordering::SeqCst), before);
    assert_eq!(
        preview_of(&app, &ana.token, &again).await["siteName"],
        "goftgu.test"
    );
    live.close().await;
}

#[tokio::test]
async fn previews_can_be_switched_off() {
    let site = serve(1).await;
    let allow = format!("127.0.0.1:{}", site.port);
    let (app, _dir) = spawn_app_with(move |c| {
        c.previews.allow = vec![allow];
        c.previews.enabled = false;
    })
    .await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "club", &[]).await;
    let message = send(
        &app,
        &ana.token,
        &group,
        &format!("http://127.0.0.1:{}/og", site.port),
    )
    .await;
    // A message sent after it is written after it too: by then a fetch would have started.
    send(&app, &ana.token, &group, "and another").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(site.hits.load(Ordering::SeqCst), 0);
    assert_eq!(preview_of(&app, &ana.token, &message).await, Value::Null);
}

async fn edit(app: &TestApp, token: &str, message: &str, content: &str) {
    app.gql_ok(
        Some(token),
        "mutation($id: ID!, $t: String!) { editMessage(id: $id, content: $t) { id } }",
        json!({ "id": message, "t": content }),
    )
    .await;
}

/// An edit that changes the link replaces the preview: the edit's event never shows the old one,
/// and the new link's preview follows, announced; an edit that keeps the link keeps its preview; an edit
/// that drops the link drops the preview.
#[tokio::test]
async fn an_edit_to_another_link_replaces_the_preview() {
    let site = serve(1).await;
    let base = format!("http://127.0.0.1:{}", site.port);
    let allow = format!("127.0.0.1:{}", site.port);
    let (app, _dir) = spawn_app_with(move |c| c.previews.allow = vec![allow]).await;
    let ana = app.register("ana").await;
    let group = create_group(&app, &ana.token, "club", &[]).await;
    let mut live = Socket::open(&app, &ana.token, MODERN).await;
    let events = "subscription($c: ID!) { chatEvents(chatId: $c) { __typename
        ... on MessageEdited { message { content linkPreview { title } } }
        ... on LinkPreviewReady { message { content linkPreview { title } } } } }";
    live.subscribe("c", events, json!({ "c": group })).await;
    let id = send(&app, &ana.token, &group, &format!("see {base}/og")).await;
    assert_eq!(live.event("c").await["__typename"], "MessageCreated");
    let ready = live.event("c").await;
    assert_eq!(ready["message"]["linkPreview"]["title"], "Goftgu & friends");

    edit(&app, &ana.token, &id, &format!("rather {base}/plain")).await;
    let edited = live.event("c").await;
    assert_eq!(edited["__typename"], "MessageEdited", "{edited}");
    // Rendered when delivered: no preview yet, or already the new one; never the old one.
    let shown = &edited["message"]["linkPreview"];
    assert!(
        shown.is_null() || shown["title"] == "Plain page",
        "the old preview went with its link: {edited}"
    );
    let ready = live.event("c").await;
    assert_eq!(ready["__typename"], "LinkPreviewReady", "{ready}");
    assert_eq!(ready["message"]["linkPreview"]["title"], "Plain page");
    assert_eq!(
        preview_of(&app, &ana.token, &id).await["url"],
        format!("{base}/plain")
    );

    // The same link in other words: the preview stays.
    edit(&app, &ana.token, &id, &format!("{base}/plain is the one")).await;
    let edited = live.event("c").await;
    assert_eq!(edited["message"]["linkPreview"]["title"], "Plain page");

    // No link any more: no preview.
    edit(&app, &ana.token, &id, "never mind").await;
    let edited = live.event("c").await;
    assert_eq!(edited["message"]["linkPreview"], Value::Null, "{edited}");
    assert_eq!(preview_of(&app, &ana.token, &id).await, Value::Null);
    live.close().await;
}
