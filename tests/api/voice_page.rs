//! The voice playground page (`GET /playground/voice`): served with a policy that allows its own
//! inline script and style by hash and this server, nothing from elsewhere; off with GraphiQL.
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn voice_page(app: &TestApp) -> reqwest::Response {
    app.client
        .get(format!("{}/playground/voice", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_voice_page_is_served_with_a_strict_policy() {
    let (app, _dir) = spawn_app().await;
    let page = voice_page(&app).await;
    assert_eq!(page.status(), 200);
    let header = |name: &str| {
        page.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'sha256-",
        "style-src 'sha256-",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(!csp.contains("https:"), "no other host: {csp}");
    let body = page.text().await.unwrap();
    for used in [
        "graphql-transport-ws",
        "voiceSignals",
        "sendSignal",
        "joinVoice",
    ] {
        assert!(body.contains(used), "the page uses {used}");
    }
}

#[tokio::test]
async fn the_voice_page_is_off_with_graphiql() {
    let (app, _dir) = spawn_app_with(|config| config.graphiql = false).await;
    assert_eq!(voice_page(&app).await.status(), 404);
}
