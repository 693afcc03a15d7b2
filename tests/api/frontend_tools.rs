//! Third-party JavaScript clients against the real server, as frontends use it: the
//! GraphQL-over-HTTP spec's own audit (graphql-http), urql with its default options (queries as
//! GET), uploads refused before their body is read as Node's fetch (undici) streams them, and the
//! GraphiQL playground in headless Chromium with every other host blocked. The scripts are
//! `tests/node/*.mjs`; each prints one JSON report that the test here judges.
//!
//! The packages come from GOFTGU_TEST_NODE_DIR (`bash .ci/node` installs the pinned
//! tests/node/package-lock.json into target/node-tools and prints the directory; `.ci/run`
//! exports it), the browser from GOFTGU_TEST_CHROMIUM (Debian's chromium, `/usr/bin/chromium`).
//! When they are set the scripts must run and pass; when unset (a plain `cargo test`) these tests
//! say they were skipped and why.
use std::{
    io::Read,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

/// The Node tools' directory, or `None` with a line saying why the test does not run.
fn node_tools(test: &str) -> Option<String> {
    match std::env::var("GOFTGU_TEST_NODE_DIR") {
        Ok(dir) if !dir.is_empty() => Some(dir),
        _ => {
            eprintln!(
                "{test} skipped: GOFTGU_TEST_NODE_DIR is not set (`bash .ci/node` installs the \
                 Node test tools into target/node-tools and prints the directory to set it to)"
            );
            None
        }
    }
}

/// The browser to drive, or `None` with a line saying why the test does not run.
fn chromium(test: &str) -> Option<String> {
    match std::env::var("GOFTGU_TEST_CHROMIUM") {
        Ok(path) if !path.is_empty() => Some(path),
        _ => {
            eprintln!(
                "{test} skipped: GOFTGU_TEST_CHROMIUM is not set (`apt-get install chromium`, \
                 then GOFTGU_TEST_CHROMIUM=/usr/bin/chromium)"
            );
            None
        }
    }
}

/// Runs `tests/node/<script>` with `args` under Node, asserts it exited 0 within two minutes and
/// returns the JSON report it printed.
async fn run_script(tools: &str, script: &str, args: &[&str]) -> Value {
    let path = format!("{}/tests/node/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("node")
        .arg(&path)
        .args(args)
        .env("GOFTGU_TEST_NODE_DIR", tools)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("node cannot run {path}: {e}"));
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        tokio::task::spawn_blocking(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_string(&mut text).ok();
            }
            text
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("script status") {
            break Some(status);
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    let status =
        status.unwrap_or_else(|| panic!("{script} still running after 120 s:\n{stdout}\n{stderr}"));
    assert!(
        status.success(),
        "{script} failed ({status}):\n{stdout}\n--- stderr ---\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON report ({e}):\n{stdout}\n{stderr}"))
}

#[tokio::test]
async fn the_graphql_over_http_audit_finds_no_must_or_should_failure() {
    let Some(tools) = node_tools("the GraphQL-over-HTTP audit") else {
        return;
    };
    let (app, _dir) = spawn_app().await;
    let report = run_script(&tools, "audit.mjs", &[&app.address]).await;
    let counts = &report["counts"];
    eprintln!("graphql-http audit: {counts}");
    assert!(
        report["total"].as_u64() > Some(20) && counts["MUST"]["ok"].as_u64() > Some(0),
        "the audit ran: {report}"
    );
    let failures: Vec<String> = report["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .filter(|f| {
            let name = f["name"].as_str().unwrap_or_default();
            name.starts_with("MUST") || name.starts_with("SHOULD")
        })
        .map(|f| {
            let answer = &f["answer"];
            format!(
                "- {} [{}]: {}\n  answered {} ({}): {}",
                f["name"].as_str().unwrap_or_default(),
                f["id"].as_str().unwrap_or_default(),
                f["reason"].as_str().unwrap_or_default(),
                answer["status"],
                answer["contentType"].as_str().unwrap_or("no content type"),
                answer["body"].as_str().unwrap_or("(body already read)"),
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} MUST and {} SHOULD failures:\n{}",
        counts["MUST"]["failed"],
        counts["SHOULD"]["failed"],
        failures.join("\n")
    );
}

#[tokio::test]
async fn urql_with_its_default_options_runs_a_query_a_mutation_and_a_subscription() {
    let Some(tools) = node_tools("the urql test") else {
        return;
    };
    let (app, _dir) = spawn_app().await;
    let report = run_script(&tools, "urql.mjs", &[&app.address, "urqlfan"]).await;

    let register = &report["register"];
    assert!(register["error"].is_null(), "register: {register}");
    assert!(
        register["data"]["register"]["accessToken"].is_string(),
        "register: {register}"
    );
    let user_id = &register["data"]["register"]["user"]["id"];
    let me = &report["me"];
    assert!(me["error"].is_null(), "me: {me}");
    assert_eq!(me["data"]["me"]["username"], "urqlfan", "me: {me}");
    assert_eq!(&me["data"]["me"]["id"], user_id, "me: {me}");
    let user = &report["user"];
    assert!(user["error"].is_null(), "user: {user}");
    assert_eq!(user["data"]["user"]["username"], "urqlfan", "user: {user}");

    // urql's defaults: queries over GET (they fit in a URL), mutations over POST.
    let requests = report["requests"].as_array().expect("requests");
    let method = |operation: &str| {
        requests
            .iter()
            .find(|r| r["operationName"] == operation)
            .map(|r| r["method"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no request for {operation}: {requests:?}"))
    };
    assert_eq!(method("Register"), "POST", "{requests:?}");
    assert_eq!(method("Me"), "GET", "{requests:?}");
    assert_eq!(method("User"), "GET", "{requests:?}");

    let heartbeat = &report["heartbeat"];
    assert_eq!(
        heartbeat["errors"].as_array().map(Vec::len),
        Some(0),
        "heartbeat: {heartbeat}"
    );
    let values = heartbeat["values"].as_array().expect("heartbeat values");
    assert_eq!(values.len(), 3, "heartbeat: {heartbeat}");
    assert!(
        values.iter().all(Value::is_string),
        "heartbeat: {heartbeat}"
    );
}

#[tokio::test]
async fn uploads_refused_before_their_body_reach_nodes_fetch_as_their_status() {
    let Some(tools) = node_tools("the upload refusal test") else {
        return;
    };
    let (app, _dir) = spawn_app_with(|config| config.max_upload_bytes = 1024).await;
    let user = app.register("streamer").await;
    let big = (2 * 1024 * 1024).to_string();
    let report = run_script(&tools, "upload.mjs", &[&app.address, &user.token, &big]).await;
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 6, "{report}");
    for seen in results {
        eprintln!("{seen}");
    }
    let expected = |seen: &Value| if seen["case"] == "too big" { 413 } else { 401 };
    let wrong: Vec<String> = results
        .iter()
        .filter(|seen| {
            seen["status"].as_u64() != Some(expected(seen)) || !seen["json"]["detail"].is_string()
        })
        .map(|seen| {
            let expected = expected(seen);
            format!(
                "- {} ({} body) expected {expected} with detail, saw {seen}",
                seen["case"], seen["body"]
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test]
async fn graphiql_works_in_a_browser_with_every_other_host_blocked() {
    let (Some(tools), Some(chromium)) = (
        node_tools("the GraphiQL browser test"),
        chromium("the GraphiQL browser test"),
    ) else {
        return;
    };
    let (app, _dir) = spawn_app().await;
    let report = run_script(&tools, "browser.mjs", &[&app.address, &chromium]).await;
    let steps = &report["steps"];
    let problems = &report["problems"];
    let context = format!("{report:#}");

    assert!(report["fatal"].is_null(), "{context}");
    assert_eq!(steps["page"]["status"], 200, "{context}");
    for kind in [
        "foreignRequests",
        "consoleErrors",
        "cspViolations",
        "pageErrors",
    ] {
        assert_eq!(
            problems[kind].as_array().map(Vec::len),
            Some(0),
            "{kind}: {}\n{context}",
            problems[kind]
        );
    }
    let own = report["ownRequests"].as_array().expect("own requests");
    assert!(
        own.iter()
            .filter_map(Value::as_str)
            .any(|r| r.starts_with("GET /playground/assets/graphiql.min.") && r.ends_with(".js")),
        "GraphiQL came from this server: {context}"
    );

    let token = steps["register"]["data"]["register"]["accessToken"].as_str();
    assert!(token.is_some(), "the Register tab: {context}");
    assert_eq!(
        steps["me"]["data"]["me"]["username"], "sara",
        "the Me tab with the token in the Headers editor: {context}"
    );
    assert!(
        steps["heartbeat"]["data"]["heartbeat"].is_string(),
        "the Heartbeat subscription: {context}"
    );
    let sockets = report["webSockets"].as_array().expect("web sockets");
    assert!(
        sockets
            .iter()
            .any(|url| url.as_str().is_some_and(|u| u.ends_with("/graphql/ws"))),
        "the subscription went over /graphql/ws: {context}"
    );
}
