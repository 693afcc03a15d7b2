//! GraphiQL at `GET /graphql`, preloaded with the example operations in `playground/`.
//! Every `.graphql` file there must be listed in `EXAMPLES` (a test checks it). The page is sent
//! with a Content-Security-Policy that allows its one inline script by hash, the GraphiQL assets'
//! host, and connections to this server only; it may not be framed.
use std::sync::OnceLock;

use axum::{
    http::header,
    response::{Html, IntoResponse, Response},
};
use base64::Engine;
use sha2::Digest;

/// The example operations, in tab order.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "01-register.graphql",
        include_str!("../../playground/01-register.graphql"),
    ),
    (
        "02-login.graphql",
        include_str!("../../playground/02-login.graphql"),
    ),
    (
        "03-me.graphql",
        include_str!("../../playground/03-me.graphql"),
    ),
    (
        "04-users.graphql",
        include_str!("../../playground/04-users.graphql"),
    ),
    (
        "05-user.graphql",
        include_str!("../../playground/05-user.graphql"),
    ),
    (
        "06-update-profile.graphql",
        include_str!("../../playground/06-update-profile.graphql"),
    ),
    (
        "07-change-password.graphql",
        include_str!("../../playground/07-change-password.graphql"),
    ),
    (
        "08-heartbeat.graphql",
        include_str!("../../playground/08-heartbeat.graphql"),
    ),
    (
        "09-logout.graphql",
        include_str!("../../playground/09-logout.graphql"),
    ),
    (
        "10-chats.graphql",
        include_str!("../../playground/10-chats.graphql"),
    ),
    (
        "11-direct-and-groups.graphql",
        include_str!("../../playground/11-direct-and-groups.graphql"),
    ),
    (
        "12-rooms.graphql",
        include_str!("../../playground/12-rooms.graphql"),
    ),
    (
        "13-messages.graphql",
        include_str!("../../playground/13-messages.graphql"),
    ),
    (
        "14-message-actions.graphql",
        include_str!("../../playground/14-message-actions.graphql"),
    ),
    (
        "15-read-state.graphql",
        include_str!("../../playground/15-read-state.graphql"),
    ),
    (
        "16-search.graphql",
        include_str!("../../playground/16-search.graphql"),
    ),
    (
        "17-live.graphql",
        include_str!("../../playground/17-live.graphql"),
    ),
    (
        "18-files.graphql",
        include_str!("../../playground/18-files.graphql"),
    ),
    (
        "19-listening-together.graphql",
        include_str!("../../playground/19-listening-together.graphql"),
    ),
    (
        "20-voice.graphql",
        include_str!("../../playground/20-voice.graphql"),
    ),
];

const TEMPLATE: &str = include_str!("../../playground/index.html");
const PLACEHOLDER: &str = "/*GOFTGU_EXAMPLES*/[]";

/// The rendered page (built once).
pub fn page() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| {
        let examples: Vec<_> = EXAMPLES
            .iter()
            .map(|(name, query)| serde_json::json!({ "name": name, "query": query }))
            .collect();
        // `</` is escaped so an example can never close the surrounding <script>.
        let json = serde_json::to_string(&examples)
            .unwrap_or_else(|_| "[]".into())
            .replace("</", "<\\/");
        TEMPLATE.replace(PLACEHOLDER, &json)
    })
}

/// Where the page loads React and GraphiQL from.
const ASSET_HOST: &str = "https://unpkg.com";

/// The page with its security headers.
pub fn response() -> Response {
    static POLICY: OnceLock<String> = OnceLock::new();
    let policy = POLICY.get_or_init(|| content_security_policy(page()));
    with_policy(page(), policy)
}

/// A playground page with its policy and the headers every playground page sends (no referrer,
/// no framing, no sniffing, revalidated on each load).
pub(super) fn with_policy(page: &'static str, policy: &str) -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Html(page),
    )
        .into_response()
}

/// `'sha256-…'` (base64) of each inline `<tag>` element's body, for a content security policy.
pub(super) fn inline_hashes(page: &str, tag: &str) -> Vec<String> {
    inline_elements(page, tag)
        .into_iter()
        .map(|body| {
            let digest = sha2::Sha256::digest(body.as_bytes());
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect()
}

/// Scripts: the asset host and the page's inline scripts by their SHA-256, nothing else.
fn content_security_policy(page: &str) -> String {
    let hashes = inline_hashes(page, "script");
    format!(
        "default-src 'none'; script-src {ASSET_HOST} {}; style-src {ASSET_HOST} 'unsafe-inline'; \
         img-src 'self' data: {ASSET_HOST}; font-src {ASSET_HOST} data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        hashes.join(" ")
    )
}

/// The bodies of the `<tag>` elements written exactly so (a `<script src=…>` is not one).
fn inline_elements<'p>(page: &'p str, tag: &str) -> Vec<&'p str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    page.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once(close.as_str()).map(|(body, _)| body))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_inline_script_by_hash() {
        let page = "<script src=\"x\"></script><script>alert(1)</script>";
        assert_eq!(inline_elements(page, "script"), ["alert(1)"]);
        let policy = content_security_policy(page);
        // sha256("alert(1)") in base64.
        assert!(
            policy.contains("'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"),
            "{policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.starts_with("default-src 'none'; script-src https://unpkg.com 'sha256-"));
    }
}
