//! Parsed and validated documents are kept (`graphql::documents`): repeating an operation, over
//! POST, GET and the WebSocket, gives exactly the answer the first run gave (errors included)
//! and is counted as a hit in `/metrics`.
use serde_json::{Value, json};

use crate::{
    helpers::{TestApp, spawn_app},
    metrics::scrape,
};

fn sample(body: &str, stage: &str, outcome: &str) -> f64 {
    let name = format!(r#"goftgu_documents_cached_total{{stage="{stage}",outcome="{outcome}"}}"#);
    body.lines()
        .find_map(|line| line.strip_prefix(name.as_str())?.strip_prefix(' '))
        .map_or(0.0, |v| v.parse().unwrap())
}

async fn get(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    app.client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", query), ("variables", &variables.to_string())])
        .header("accept", "application/json")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_repeated_operation_gets_the_same_answer_from_the_document_cache() {
    let (app, _dir) = spawn_app().await;
    let user = app.register("cached_ana").await;
    let token = user.token.as_str();
    let cases = [
        ("{ me { id username } }", json!({})),
        (
            "query Me($n: Int) { me { id } chats(first: $n) { totalCount } }",
            json!({ "n": 5 }),
        ),
        // The same document with a value of the wrong type: a validation error, not the
        // success kept for the value above.
        (
            "query Me($n: Int) { me { id } chats(first: $n) { totalCount } }",
            json!({ "n": "five" }),
        ),
        ("{ me { id nope } }", json!({})),
        ("{ me { id ", json!({})),
    ];
    let before = scrape(&app).await;
    let mut first = Vec::new();
    for (query, variables) in &cases {
        first.push(app.gql(Some(token), query, variables.clone()).await);
    }
    assert_eq!(first[0]["data"]["me"]["username"], "cached_ana");
    assert_eq!(first[1]["data"]["chats"]["totalCount"], 0, "{}", first[1]);
    assert!(
        first[2]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid value"),
        "{}",
        first[2]
    );
    assert!(first[3]["errors"].is_array(), "{}", first[3]);
    assert!(first[4]["errors"].is_array(), "{}", first[4]);
    for _ in 0..3 {
        for ((query, variables), expected) in cases.iter().zip(&first) {
            let again = app.gql(Some(token), query, variables.clone()).await;
            assert_eq!(&again, expected, "{query}");
        }
    }
    // GET shares the cache (and its answers are the same as POST's).
    for ((query, variables), expected) in cases.iter().zip(&first).take(4) {
        assert_eq!(&get(&app, token, query, variables.clone()).await, expected);
    }

    let after = scrape(&app).await;
    let delta = |stage, outcome| sample(&after, stage, outcome) - sample(&before, stage, outcome);
    // Four cases parse, 20 requests (4 × POST, 1 × GET), in three documents (one sent with two
    // sets of variables, validated apart); the fifth case does not parse and is never kept.
    assert_eq!(delta("parse", "miss"), 3.0, "{after}");
    assert_eq!(delta("parse", "hit"), 20.0 - 3.0, "{after}");
    assert_eq!(delta("validation", "miss"), 4.0, "{after}");
    assert_eq!(delta("validation", "hit"), 20.0 - 4.0, "{after}");

    // The WebSocket runs through the same schema and the same cache.
    let mut ws = app.ws("/graphql/ws", "graphql-transport-ws").await;
    ws.init(json!({ "Authorization": format!("Bearer {token}") }))
        .await;
    let mut answers = Vec::new();
    for id in ["1", "2", "3", "4"] {
        let query = if id < "3" {
            "{ me { id username } }"
        } else {
            "{ me { nope } }"
        };
        ws.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }))
            .await;
        let message = ws.next_json().await;
        answers.push(message["payload"].clone());
        if message["type"] == "next" {
            assert_eq!(ws.next_json().await["type"], "complete");
        }
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], first[0]);
    assert_eq!(answers[2], answers[3]);
    assert!(answers[2].to_string().contains("nope"), "{}", answers[2]);
    // `{ me { id username } }` was kept from HTTP; `{ me { nope } }` is new once.
    let last = scrape(&app).await;
    let delta = |stage, outcome| sample(&last, stage, outcome) - sample(&after, stage, outcome);
    assert_eq!((delta("parse", "hit"), delta("parse", "miss")), (3.0, 1.0));
    assert_eq!(
        (delta("validation", "hit"), delta("validation", "miss")),
        (3.0, 1.0)
    );
}
