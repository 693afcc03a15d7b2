//! Scenario 0, fixed cost: the smallest authenticated query, `{ me { id } }` (one signed-in user,
//! one primary-key read), back to back from 1 and from 8 concurrent clients: p50 / p99 latency
//! and requests per second, against a bare HTTP/1.1 server answering the same JSON to the same
//! client. What goftgu adds to the bare round trip is its HTTP stack, authentication and GraphQL;
//! what the other scenarios add to this figure is their database work and resolvers.
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    Options,
    baseline::BaselineServer,
    client::Api,
    db::Backend,
    report::{Better, Report, Scope, percentile},
    server::{Goftgu, Launch},
};

pub const ME: &str = "{ me { id } }";
const CLIENTS: [usize; 2] = [1, 8];

pub async fn run(options: &Options, backend: &Backend, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = backend.fresh(dir.path()).await?;
    let server = Goftgu::start(&Launch::new(url.clone(), dir.path().to_path_buf())).await?;
    let bare = BaselineServer::start_http().await?;
    let api = Api::new(server.graphql_url());
    let user = api.register("fixed").await?;
    let (warm, window) = if options.quick {
        (Duration::from_millis(300), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    };
    let scope = Scope {
        scenario: "0 fixed cost",
        backend: backend.name(),
        baseline_is: "bare HTTP/1.1 server (hyper), same client",
    };
    let check = api.call(Some(&user.token), ME, json!({})).await?;
    anyhow::ensure!(
        check["me"]["id"].as_str() == Some(&user.id.to_string()),
        "me answered {check}"
    );
    let statements = {
        let http = reqwest::Client::new();
        let mut fewest = u64::MAX;
        for _ in 0..3 {
            let before = server.sql_statements(&http).await?;
            api.call(Some(&user.token), ME, json!({})).await?;
            fewest = fewest.min(server.sql_statements(&http).await? - before);
        }
        fewest
    };
    let ours_api = Arc::new(api);
    let theirs_api = Arc::new(Api::new(bare.http_url()));
    let token: Arc<str> = user.token.as_str().into();
    for clients in CLIENTS {
        let (api, t) = (ours_api.clone(), token.clone());
        let ours = drive(clients, warm, window, move || {
            let (api, t) = (api.clone(), t.clone());
            async move { api.call(Some(&t), ME, json!({})).await.map(drop) }
        })
        .await?;
        let (api, t) = (theirs_api.clone(), token.clone());
        let theirs = drive(clients, warm, window, move || {
            let (api, t) = (api.clone(), t.clone());
            async move { api.call(Some(&t), ME, json!({})).await.map(drop) }
        })
        .await?;
        let case = format!(
            "{{ me {{ id }} }}, {clients} client{}",
            if clients == 1 { "" } else { "s" }
        );
        let (mut ours_lat, ours_rate) = ours;
        let (mut theirs_lat, theirs_rate) = theirs;
        report.push(scope.row(
            &case,
            "requests/s",
            "1/s",
            Better::Higher,
            ours_rate,
            theirs_rate,
            if clients == 1 {
                format!("{statements} SQL statement(s) per request")
            } else {
                String::new()
            },
        ));
        report.push(scope.row(
            &case,
            "p50 latency",
            "ms",
            Better::Lower,
            percentile(&mut ours_lat, 50.0) / 1000.0,
            percentile(&mut theirs_lat, 50.0) / 1000.0,
            "",
        ));
        report.push(scope.row(
            &case,
            "p99 latency",
            "ms",
            Better::Lower,
            percentile(&mut ours_lat, 99.0) / 1000.0,
            percentile(&mut theirs_lat, 99.0) / 1000.0,
            "",
        ));
    }
    Ok(())
}

/// Runs `clients` loops of `op` for `warm`, then for `window` records each call's latency (µs);
/// returns the latencies and the calls completed per second in the window.
async fn drive<F, Fut>(
    clients: usize,
    warm: Duration,
    window: Duration,
    op: F,
) -> anyhow::Result<(Vec<u32>, f64)>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let counting_from = Instant::now() + warm;
    let end = counting_from + window;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let op = Arc::new(op);
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (op, latencies) = (op.clone(), latencies.clone());
        loops.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let start = Instant::now();
                op().await?;
                let now = Instant::now();
                if now >= end {
                    break;
                }
                if start >= counting_from {
                    mine.push((now - start).as_micros() as u32);
                }
            }
            latencies.lock().expect("not poisoned").extend(mine);
            anyhow::Ok(())
        });
    }
    while let Some(result) = loops.join_next().await {
        result??;
    }
    let latencies = std::mem::take(&mut *latencies.lock().expect("not poisoned"));
    let rate = latencies.len() as f64 / window.as_secs_f64();
    Ok((latencies, rate))
}
