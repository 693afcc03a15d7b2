//! GraphiQL at `GET /graphql`, preloaded with the example operations in `playground/`.
//! Every `.graphql` file there must be listed in `EXAMPLES` (a test checks it). React and GraphiQL
//! come from this binary: `playground/assets/` (built from pinned npm packages by
//! `playground/build-assets.sh`) is compiled in and served at `/playground/assets/<file>`, each
//! page link carrying the file's content hash so it can be cached for good. The page is sent with
//! a Content-Security-Policy that allows its one inline script by hash and everything else from
//! this server only; it may not be framed.
use std::sync::OnceLock;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use base64::Engine;
use sha2::Digest;

use crate::error::AppError;

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
    (
        "21-refresh-token.graphql",
        include_str!("../../playground/21-refresh-token.graphql"),
    ),
    (
        "22-people.graphql",
        include_str!("../../playground/22-people.graphql"),
    ),
    (
        "23-notifications.graphql",
        include_str!("../../playground/23-notifications.graphql"),
    ),
    (
        "24-push.graphql",
        include_str!("../../playground/24-push.graphql"),
    ),
    (
        "25-pins-and-saved.graphql",
        include_str!("../../playground/25-pins-and-saved.graphql"),
    ),
    (
        "26-polls-and-previews.graphql",
        include_str!("../../playground/26-polls-and-previews.graphql"),
    ),
    (
        "27-link-previews.graphql",
        include_str!("../../playground/27-link-previews.graphql"),
    ),
    (
        "28-threads.graphql",
        include_str!("../../playground/28-threads.graphql"),
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
        let page = TEMPLATE.replace(PLACEHOLDER, &json);
        // Each asset link gets the versioned name.
        assets().iter().fold(page, |page, asset| {
            page.replace(
                &format!("\"{ASSET_PATH}{}\"", asset.name),
                &format!("\"{ASSET_PATH}{}\"", asset.versioned),
            )
        })
    })
}

/// Where the assets are served.
const ASSET_PATH: &str = "/playground/assets/";

/// The files of `playground/assets/`: name, content type, bytes.
const ASSET_FILES: &[(&str, &str, &[u8])] = &[
    (
        "graphiql.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/assets/graphiql.min.js"),
    ),
    (
        "graphiql.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../../playground/assets/graphiql.min.css"),
    ),
    (
        "react.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/assets/react.production.min.js"),
    ),
    (
        "react-dom.production.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../playground/assets/react-dom.production.min.js"),
    ),
    (
        "LICENSES.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../../playground/assets/LICENSES.txt"),
    ),
];

/// One embedded asset with its content hash.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// `<stem>.<hash>.<extension>`: the name the page links to, cached for good.
    versioned: String,
    /// The hash as an entity tag, for revalidating the plain name.
    etag: String,
}

fn assets() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        ASSET_FILES
            .iter()
            .map(|&(name, content_type, bytes)| {
                let digest = sha2::Sha256::digest(bytes);
                let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                let (stem, extension) = name.rsplit_once('.').unwrap_or((name, ""));
                Asset {
                    name,
                    content_type,
                    bytes,
                    versioned: format!("{stem}.{hash}.{extension}"),
                    etag: format!("\"{hash}\""),
                }
            })
            .collect()
    })
}

/// `GET /playground/assets/{file}`: the versioned name (what the page links to) is cached for a
/// year as immutable; the plain name (e.g. `LICENSES.txt`, for people) is revalidated each time.
/// Off with GraphiQL (`--graphiql false`).
pub async fn asset(
    State(state): State<super::HttpState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.app.config.graphiql {
        return AppError::NotFound("the playground is turned off on this server".into())
            .into_response();
    }
    let Some((asset, versioned)) = assets().iter().find_map(|asset| {
        (asset.versioned == file)
            .then_some((asset, true))
            .or((asset.name == file).then_some((asset, false)))
    }) else {
        return AppError::NotFound("no such playground asset".into()).into_response();
    };
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let common = [
        (header::CACHE_CONTROL, cache),
        (header::ETAG, asset.etag.as_str()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, asset.content_type)],
        asset.bytes,
    )
        .into_response()
}

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

/// Scripts: this server's assets and the page's inline scripts by their SHA-256, nothing else.
/// Styles may be inline too (GraphiQL's components set them); images and fonts may be `data:`
/// (GraphiQL's stylesheet embeds its fonts and icons).
fn content_security_policy(page: &str) -> String {
    let hashes = inline_hashes(page, "script");
    format!(
        "default-src 'none'; script-src 'self' {}; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
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
        assert!(policy.starts_with("default-src 'none'; script-src 'self' 'sha256-"));
        assert!(!policy.contains("http"), "no other host: {policy}");
    }

    #[test]
    fn every_asset_is_embedded_and_linked_by_its_versioned_name() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playground/assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = assets().iter().map(|a| a.name.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "playground/assets/ and ASSET_FILES");

        let page = page();
        for asset in assets()
            .iter()
            .filter(|a| a.name.ends_with(".js") || a.name.ends_with(".css"))
        {
            let link = format!("\"{ASSET_PATH}{}\"", asset.versioned);
            assert!(page.contains(&link), "{link} in the page");
            assert!(
                asset.versioned.len() == asset.name.len() + 17,
                "{}",
                asset.versioned
            );
        }
        assert!(!page.contains("https://"), "nothing from another host");
        assert!(!page.contains("http://"), "nothing from another host");
    }
}
