//! GraphiQL's assets come from the binary (`playground/assets/`, built from pinned npm packages by
//! `playground/build-assets.sh`): the page links each by a content-hashed name under
//! `/playground/assets/`, served with its type and cached for good; the policy allows no other
//! host. The licence notices are served too.
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The `/playground/assets/…` paths the page links to.
fn asset_links(page: &str) -> Vec<String> {
    page.split('"')
        .filter(|part| part.starts_with("/playground/assets/"))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn the_page_loads_everything_from_this_server() {
    let (app, _dir) = spawn_app().await;
    let page = get(&app, "/graphql").await;
    assert_eq!(page.status(), 200);
    let csp = header(&page, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self' 'sha256-",
        "style-src 'self' 'unsafe-inline'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("http"), "no other host: {csp}");
    let body = page.text().await.unwrap();
    assert!(!body.contains("https://"), "no other host in the page");
    assert!(!body.contains("unpkg"), "no CDN");

    let links = asset_links(&body);
    assert_eq!(links.len(), 4, "{links:?}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/assets");
    for link in links {
        let response = get(&app, &link).await;
        assert_eq!(response.status(), 200, "{link}");
        let content_type = header(&response, "content-type");
        let expected = if link.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(content_type.starts_with(expected), "{link}: {content_type}");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable",
            "{link}"
        );
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        // graphiql.min.0123456789abcdef.js is playground/assets/graphiql.min.js.
        let name = link.rsplit('/').next().unwrap();
        let (rest, extension) = name.rsplit_once('.').unwrap();
        let (stem, hash) = rest.rsplit_once('.').unwrap();
        assert_eq!(hash.len(), 16, "{link}");
        let on_disk = std::fs::read(dir.join(format!("{stem}.{extension}"))).unwrap();
        assert_eq!(response.bytes().await.unwrap(), on_disk, "{link}");
    }
}

#[tokio::test]
async fn the_licences_are_served_and_plain_names_revalidate() {
    let (app, _dir) = spawn_app().await;
    let licences = get(&app, "/playground/assets/LICENSES.txt").await;
    assert_eq!(licences.status(), 200);
    assert!(header(&licences, "content-type").starts_with("text/plain"));
    assert_eq!(header(&licences, "cache-control"), "no-cache");
    let etag = header(&licences, "etag");
    assert!(etag.starts_with('"'), "{etag}");
    let text = licences.text().await.unwrap();
    for package in ["graphiql@", "react@18.3.1", "react-dom@18.3.1", "graphql@"] {
        assert!(text.contains(package), "{package} in LICENSES.txt");
    }

    let again = app
        .client
        .get(format!("{}/playground/assets/LICENSES.txt", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    let missing = get(&app, "/playground/assets/graphiql.min.0000000000000000.js").await;
    assert_eq!(missing.status(), 404);
    let outside = get(&app, "/playground/assets/..%2FCargo.toml").await;
    assert_eq!(outside.status(), 404);
}

#[tokio::test]
async fn the_assets_are_off_with_graphiql() {
    let (app, _dir) = spawn_app_with(|config| config.graphiql = false).await;
    let response = get(&app, "/playground/assets/LICENSES.txt").await;
    assert_eq!(response.status(), 404);
}
