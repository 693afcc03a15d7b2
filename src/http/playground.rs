//! GraphiQL at `GET /graphql`, preloaded with the example operations in `playground/`.
//! Every `.graphql` file there must be listed in `EXAMPLES` (a test checks it).
use std::sync::OnceLock;

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
