//! `/metrics` as an operator's scraper reads it: GraphQL root fields by outcome with latency,
//! open sockets, running subscriptions and their deliveries, upload bytes, the SQL statement
//! counter and the database pool.
use serde_json::json;

use crate::{
    cluster::subscribe_chat,
    files::upload,
    fixtures::{create_group, send},
    helpers::{TestApp, spawn_app},
};

/// The `/metrics` body (OpenMetrics text, as Prometheus scrapes it).
pub async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    let body = response.text().await.unwrap();
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
    body
}

/// The value of the sample `name` (with its labels, exactly as exposed), or 0 when absent.
pub(crate) fn sample(body: &str, name: &str) -> f64 {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

#[tokio::test]
async fn metrics_count_operations_sockets_deliveries_and_uploads() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("metric_ana").await;
    let ben = app.register("metric_ben").await;
    let group = create_group(&app, &ana.token, "watched", &["metric_ben"]).await;
    let refused = app
        .gql(
            Some(&ben.token),
            "mutation($c: ID!) { updateGroup(chatId: $c, input: { name: \"x\" }) { id } }",
            json!({ "c": group }),
        )
        .await;
    assert!(refused["errors"].is_array(), "{refused}");

    let before = scrape(&app).await;
    let ok = r#"goftgu_graphql_operations_total{type="Mutation",field="register",outcome="ok"}"#;
    assert_eq!(sample(&before, ok), 2.0, "{before}");
    let forbidden = r#"goftgu_graphql_operations_total{type="Mutation",field="updateGroup",outcome="FORBIDDEN"}"#;
    assert_eq!(sample(&before, forbidden), 1.0, "{before}");
    assert!(
        sample(
            &before,
            r#"goftgu_graphql_operation_seconds_count{type="Mutation",field="register"}"#
        ) >= 2.0,
        "{before}"
    );
    assert_eq!(sample(&before, "goftgu_websockets"), 0.0);
    assert_eq!(sample(&before, "goftgu_subscriptions"), 0.0);
    assert!(sample(&before, "goftgu_sql_statements_total") > 0.0);
    assert!(sample(&before, "goftgu_sql_statement_seconds_count") > 0.0);
    assert!(
        sample(&before, "goftgu_db_pool_connections") >= 1.0,
        "{before}"
    );
    assert_eq!(
        sample(&before, "goftgu_bus_link_up"),
        if app.state.config.redis_url.is_some() {
            1.0
        } else {
            -1.0
        }
    );

    // A live subscription: counted while it runs, and what it delivers.
    let mut ws = subscribe_chat(&app, &ben.token, &group).await;
    send(&app, &ana.token, &group, "hello").await;
    assert_eq!(crate::cluster::next_message(&mut ws).await, "hello");
    let live = scrape(&app).await;
    assert_eq!(sample(&live, "goftgu_websockets"), 1.0, "{live}");
    assert_eq!(sample(&live, "goftgu_subscriptions"), 1.0, "{live}");
    assert!(sample(&live, "goftgu_deliveries_total") >= 1.0, "{live}");
    drop(ws);

    // Upload bytes.
    let bytes = crate::file_bytes::png(2048);
    let size = bytes.len() as f64;
    upload(&app, &ana.token, "dot.png", "image/png", bytes).await;
    let after = scrape(&app).await;
    assert_eq!(
        sample(&after, "goftgu_upload_bytes_total") - sample(&live, "goftgu_upload_bytes_total"),
        size
    );
}

/// Two instances on PostgreSQL + Redis: what crosses the bus shows on the receiving side, and
/// a message acknowledged just before its instance stops still reaches the other instance's
/// subscriber (the draining instance flushes its queue to Redis before it exits).
#[tokio::test]
async fn the_bus_link_is_measured_and_flushed_on_stop() {
    let Some(redis_url) = crate::cluster::services() else {
        return;
    };
    let (a, b, _dirs) = crate::cluster::spawn_pair_with(&redis_url, |_| {}).await;
    let ana = a.register("bus_ana").await;
    let ben = a.register("bus_ben").await;
    let group = create_group(&a, &ana.token, "across", &["bus_ben"]).await;
    let mut ws = subscribe_chat(&a, &ben.token, &group).await;
    crate::cluster::wait_for_channel(&redis_url, &a, &group).await;
    let login = b.login("bus_ana", crate::helpers::PASSWORD).await;
    let token_b = login["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();

    send(&b, &token_b, &group, "first").await;
    assert_eq!(crate::cluster::next_message(&mut ws).await, "first");
    let seen = scrape(&a).await;
    assert_eq!(sample(&seen, "goftgu_bus_link_up"), 1.0, "{seen}");
    assert!(
        sample(&seen, "goftgu_bus_received_events_total") >= 1.0,
        "{seen}"
    );
    assert!(seen.contains("goftgu_bus_lag_seconds "), "{seen}");
    assert_eq!(sample(&seen, "goftgu_bus_dropped_events_total"), 0.0);

    // Acknowledged, then the instance stops at once.
    send(&b, &token_b, &group, "last words").await;
    b.stop().await;
    assert_eq!(crate::cluster::next_message(&mut ws).await, "last words");
}
