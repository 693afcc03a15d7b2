//! Every query and mutation that needs a viewer refuses an anonymous call with `UNAUTHENTICATED`,
//! driven by the served schema: a field added later is covered without touching this file.
//! Subscriptions need a token at `connection_init` already (tests/api/websocket.rs).
use std::collections::HashMap;

use serde_json::{Value, json};

use crate::helpers::{error_code, spawn_app};

/// Fields anyone may call (`refreshToken`'s token is its credential: tests/api/refresh_tokens.rs).
const PUBLIC: &[&str] = &["register", "login", "refreshToken", "serverTime"];

const TYPE_REF: &str = "fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";

/// A literal of the given type for an argument: enough to pass validation and reach the resolver.
fn literal(ty: &Value, types: &HashMap<String, Value>) -> String {
    match ty["kind"].as_str() {
        Some("NON_NULL") => literal(&ty["ofType"], types),
        Some("LIST") => format!("[{}]", literal(&ty["ofType"], types)),
        _ => {
            let name = ty["name"].as_str().unwrap_or_default();
            let definition = &types[name];
            match definition["kind"].as_str() {
                Some("ENUM") => definition["enumValues"][0]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                Some("INPUT_OBJECT") => {
                    let fields: Vec<String> = definition["inputFields"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|f| f["type"]["kind"] == "NON_NULL" && f["defaultValue"].is_null())
                        .map(|f| {
                            format!(
                                "{}: {}",
                                f["name"].as_str().unwrap(),
                                literal(&f["type"], types)
                            )
                        })
                        .collect();
                    format!("{{{}}}", fields.join(", "))
                }
                _ => match name {
                    "Int" => "1".into(),
                    "Float" => "1.0".into(),
                    "Boolean" => "true".into(),
                    "DateTime" => "\"2026-01-01T00:00:00Z\"".into(),
                    // Ids, strings and any other scalar: an id-shaped string passes them all.
                    _ => "\"018f0000-0000-7000-8000-000000000000\"".into(),
                },
            }
        }
    }
}

/// The innermost named type of a reference.
fn named(ty: &Value) -> &str {
    match ty["name"].as_str() {
        Some(name) => name,
        None => named(&ty["ofType"]),
    }
}

#[tokio::test]
async fn every_field_that_needs_a_viewer_refuses_an_anonymous_call() {
    let (app, _dir) = spawn_app().await;
    let schema = app
        .gql_ok(
            None,
            &format!(
                "{{ __schema {{ queryType {{ name }} mutationType {{ name }} types {{ name kind \
                 fields {{ name args {{ name defaultValue type {{ ...T }} }} type {{ ...T }} }} \
                 inputFields {{ name defaultValue type {{ ...T }} }} enumValues {{ name }} }} }} }} {TYPE_REF}"
            ),
            json!({}),
        )
        .await;
    let types: HashMap<String, Value> = schema["__schema"]["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t.clone()))
        .collect();
    let mut checked = 0;
    for (root, keyword) in [("queryType", "query"), ("mutationType", "mutation")] {
        let root = schema["__schema"][root]["name"].as_str().unwrap();
        for field in types[root]["fields"].as_array().unwrap() {
            let name = field["name"].as_str().unwrap();
            if PUBLIC.contains(&name) {
                continue;
            }
            let args: Vec<String> = field["args"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["type"]["kind"] == "NON_NULL" && a["defaultValue"].is_null())
                .map(|a| {
                    format!(
                        "{}: {}",
                        a["name"].as_str().unwrap(),
                        literal(&a["type"], &types)
                    )
                })
                .collect();
            // Uploads need multipart, which strangers are refused before (public_graphql.rs).
            if field["args"].to_string().contains("\"Upload\"") {
                continue;
            }
            let args = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            let returns = &types[named(&field["type"])];
            let selection = match returns["kind"].as_str() {
                Some("OBJECT" | "INTERFACE" | "UNION") => " { __typename }",
                _ => "",
            };
            let query = format!("{keyword} {{ {name}{args}{selection} }}");
            let response = app.gql(None, &query, json!({})).await;
            assert_eq!(
                error_code(&response),
                "UNAUTHENTICATED",
                "{query}: {response}"
            );
            checked += 1;
        }
    }
    assert!(checked > 35, "only {checked} fields were checked");
    app.stop().await;
}
