//! The committed `schema.graphql` is what the server serves, and every type and field is described.
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

use crate::helpers::spawn_app;

#[tokio::test]
async fn committed_schema_matches_the_served_schema() {
    let (app, _dir) = spawn_app().await;
    let served = app
        .client
        .get(format!("{}/schema.graphql", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "schema.graphql is stale: regenerate it with `cargo run -- print-schema > schema.graphql`"
    );
}

#[test]
fn every_type_and_field_has_a_description() {
    let sdl = goftgu::graphql::sdl();
    let document = async_graphql::parser::parse_schema(&sdl).expect("SDL parses");
    let mut missing = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let ty = &ty.node;
        let name = ty.name.node.as_str();
        if ty.description.is_none() && !["Boolean", "String", "Int", "Float", "ID"].contains(&name)
        {
            missing.push(name.to_string());
        }
        match &ty.kind {
            TypeKind::Object(object) => {
                for field in &object.fields {
                    if field.node.description.is_none() {
                        missing.push(format!("{name}.{}", field.node.name.node));
                    }
                }
            }
            TypeKind::InputObject(input) => {
                for field in &input.fields {
                    if field.node.description.is_none() {
                        missing.push(format!("{name}.{}", field.node.name.node));
                    }
                }
            }
            _ => {}
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

#[test]
fn every_operation_has_a_playground_example() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playground");
    let examples: String = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "graphql"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let sdl = goftgu::graphql::sdl();
    let document = async_graphql::parser::parse_schema(&sdl).expect("SDL parses");
    let mut missing = Vec::new();
    for definition in &document.definitions {
        let TypeSystemDefinition::Type(ty) = definition else {
            continue;
        };
        let root = ty.node.name.node.as_str();
        if !["Query", "Mutation", "Subscription"].contains(&root) {
            continue;
        }
        let TypeKind::Object(object) = &ty.node.kind else {
            continue;
        };
        for field in &object.fields {
            let name = field.node.name.node.as_str();
            let used = [
                format!("{name}("),
                format!("{name} {{"),
                format!("{name}\n"),
            ]
            .iter()
            .any(|pattern| examples.contains(pattern.as_str()));
            if !used {
                missing.push(format!("{root}.{name}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without an example in playground/: {missing:?}"
    );
}
