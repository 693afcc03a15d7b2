//! The voice playground at `GET /playground/voice` (`playground/voice.html`): a plain page that
//! signs in, joins a room's voice and talks to the other participants over WebRTC, its signalling
//! through this server's GraphQL API. No CDN: the policy allows the page's one inline script and
//! one inline style by their SHA-256 and connections to this server only; it may not be framed.
use std::sync::OnceLock;

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};

use super::{HttpState, playground};
use crate::error::AppError;

const PAGE: &str = include_str!("../../playground/voice.html");

/// `GET /playground/voice`; off with GraphiQL (`--graphiql false`).
pub async fn page(State(state): State<HttpState>) -> Response {
    if !state.app.config.graphiql {
        return AppError::NotFound("the playground is turned off on this server".into())
            .into_response();
    }
    static POLICY: OnceLock<String> = OnceLock::new();
    let policy = POLICY.get_or_init(|| content_security_policy(PAGE));
    playground::with_policy(PAGE, policy)
}

/// Only the page's own inline script and style (by hash) and this server; media comes from the
/// microphone and the peers (WebRTC is not governed by these directives).
fn content_security_policy(page: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        hashes(page, "script"),
        hashes(page, "style")
    )
}

/// The sources of the page's inline `<tag>` elements, `'none'` when it has none.
fn hashes(page: &str, tag: &str) -> String {
    let hashes = playground::inline_hashes(page, tag);
    if hashes.is_empty() {
        "'none'".into()
    } else {
        hashes.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_inline_script_and_style_by_hash_and_nothing_else() {
        let policy = content_security_policy("<style>b{}</style><script>alert(1)</script>");
        // sha256("alert(1)") in base64.
        assert!(
            policy.contains("script-src 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=';"),
            "{policy}"
        );
        assert!(policy.contains("style-src 'sha256-"), "{policy}");
        assert!(
            content_security_policy("")
                .starts_with("default-src 'none'; script-src 'none'; style-src 'none';")
        );
    }

    #[test]
    fn the_page_has_one_inline_script_and_style_and_loads_nothing_from_elsewhere() {
        assert_eq!(PAGE.matches("<script").count(), 1);
        assert_eq!(PAGE.matches("<style").count(), 1);
        assert!(!PAGE.contains("https://"), "no CDN");
        assert!(
            !PAGE.contains(" style=\""),
            "inline style attributes would be refused"
        );
        let handler_attributes = PAGE.split(" on").skip(1).filter(|rest| {
            let name_end = rest.find(|c: char| !c.is_ascii_lowercase()).unwrap_or(0);
            name_end > 0 && rest[name_end..].starts_with("=\"")
        });
        assert_eq!(
            handler_attributes.count(),
            0,
            "inline handlers would be refused"
        );
    }
}
