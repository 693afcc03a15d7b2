//! The HTTP surface around GraphQL: health, limits, errors, GraphiQL and introspection.
use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

#[tokio::test]
async fn healthz_reports_the_database() {
    let (app, _dir) = spawn_app().await;
    let response = app.health().await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "status": "ok", "database": "ok" }));
}

/// Reads `goftgu_sql_statements_total` from `/metrics`.
async fn sql_statements(app: &crate::helpers::TestApp) -> u64 {
    let body = crate::metrics::scrape(app).await;
    body.lines()
        .find_map(|line| line.strip_prefix("goftgu_sql_statements_total "))
        .unwrap_or_else(|| panic!("no counter in {body}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_the_sql_statements_of_a_request() {
    let (app, _dir) = crate::helpers::spawn_app_with(crate::n_plus_one::quiet_background).await;
    let user = app.register("metrics_user").await;
    let before = sql_statements(&app).await;
    app.gql_ok(Some(&user.token), "{ me { id username } }", json!({}))
        .await;
    let after = sql_statements(&app).await;
    // The session check and the user row: at least one statement, and no more than a handful.
    assert!((1..=4).contains(&(after - before)), "{before} -> {after}");
    assert_eq!(
        sql_statements(&app).await,
        after,
        "reading metrics runs no SQL"
    );
}

#[tokio::test]
async fn oversized_body_is_413_with_detail() {
    let (app, _dir) = spawn_app().await;
    let limit = app.state.config.max_body_bytes;
    let query = format!("{{ me {{ id }} }} #{}", "x".repeat(limit));
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("exceeds"),
        "{body}"
    );
}

#[tokio::test]
async fn non_graphql_body_is_400_with_a_coded_error() {
    let (app, _dir) = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
}

#[tokio::test]
async fn unknown_path_is_404_with_detail() {
    let (app, _dir) = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["detail"], "no such endpoint");
}

#[tokio::test]
async fn graphiql_is_served_with_every_example_operation() {
    let (app, _dir) = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("graphiql"), "GraphiQL is loaded");
    assert!(
        page.contains("/graphql/ws"),
        "subscriptions go to the WebSocket"
    );
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playground");
    let mut examples = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "graphql") {
            examples += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let first_operation_line = text.lines().find(|l| !l.starts_with('#')).unwrap();
            let encoded = serde_json::to_string(first_operation_line).unwrap();
            assert!(
                page.contains(encoded.trim_matches('"')),
                "{} is not preloaded in the playground",
                path.display()
            );
        }
    }
    assert!(examples >= 9, "found {examples} example operations");
}

#[tokio::test]
async fn introspection_passes_the_limits_but_deep_queries_do_not() {
    let (app, _dir) = spawn_app().await;
    // The query GraphiQL and Apollo tooling send.
    let introspection = r#"
      query IntrospectionQuery {
        __schema {
          queryType { name } mutationType { name } subscriptionType { name }
          types { ...FullType }
          directives { name description locations args { ...InputValue } }
        }
      }
      fragment FullType on __Type {
        kind name description
        fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
        inputFields { ...InputValue }
        interfaces { ...TypeRef }
        enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
        possibleTypes { ...TypeRef }
      }
      fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
      fragment TypeRef on __Type {
        kind name
        ofType { kind name ofType { kind name ofType { kind name ofType { kind name
          ofType { kind name ofType { kind name ofType { kind name } } } } } } }
      }"#;
    let response = app.gql(None, introspection, json!({})).await;
    assert!(response["errors"].is_null(), "{response}");
    assert_eq!(response["data"]["__schema"]["queryType"]["name"], "Query");

    let nested = format!(
        "{{ __type(name: \"User\") {}{{ name }}{} }}",
        "{ ofType ".repeat(20),
        " }".repeat(20)
    );
    let response = app.gql(None, &nested, json!({})).await;
    assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
    let message = response["errors"][0]["message"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(message.contains("nested too deep"), "{response}");
}

#[tokio::test]
async fn complexity_limit_is_on() {
    let (app, _dir) = spawn_app().await;
    let limit = app.state.config.max_query_complexity;
    let fields: String = (0..=limit).map(|i| format!("a{i}: me {{ id }} ")).collect();
    // Refused before validation by the request budget (fields after fragment expansion).
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": format!("{{ {fields} }}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error_code(&response), "BAD_USER_INPUT", "{response}");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("more than {limit} fields")),
        "{response}"
    );
}
