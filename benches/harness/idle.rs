//! Scenario 3, idle footprint: server memory (RSS) growth per connected client with one active
//! `chatEvents` subscription at 10,000 clients, against the same number of bare subscribed
//! WebSocket connections to the baseline server.
use std::time::Duration;

use crate::{
    Options,
    baseline::BaselineServer,
    client::Api,
    db::Backend,
    fanout::{Publisher, Room, Subscribers},
    report::{Better, Report, Scope},
    server::{Goftgu, Launch},
    system::rss_kib,
};

/// Lets allocators and socket buffers settle before reading RSS.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn run(options: &Options, backend: &Backend, report: &mut Report) -> anyhow::Result<()> {
    let clients = if options.quick { 1_000 } else { 10_000 };
    let dir = tempfile::tempdir()?;
    let url = backend.fresh(dir.path()).await?;
    let (launch, deployment) = Launch::live(backend, url, dir.path().to_path_buf());
    let server = Goftgu::start(&launch).await?;
    let api = Api::new(server.graphql_url());
    let room = Room::create(&api).await?;
    let publisher = room.publisher(&api);
    let ours = footprint(
        server.pid(),
        &server.ws_url(),
        &room.tokens(),
        room.chat,
        &publisher,
        clients,
    )
    .await?;

    let baseline = BaselineServer::start().await?;
    let baseline_publisher = Publisher::baseline(&baseline).await?;
    let raw = footprint(
        baseline.pid(),
        &baseline.ws_url(),
        &["none".into()],
        room.chat,
        &baseline_publisher,
        clients,
    )
    .await?;
    let scope = Scope {
        scenario: "3 idle footprint",
        backend: deployment,
        baseline_is: "bare tokio-tungstenite socket",
    };
    report.push(scope.row(
        format!("{clients} subscribed clients"),
        "RSS per client",
        "KiB",
        Better::Lower,
        ours.0,
        raw.0,
        format!(
            "server RSS {:.0} → {:.0} MiB (baseline {:.0} → {:.0} MiB)",
            ours.1, ours.2, raw.1, raw.2
        ),
    ));
    Ok(())
}

/// (KiB per client, MiB before, MiB after) for `clients` subscribed sockets.
async fn footprint(
    pid: u32,
    ws_url: &str,
    tokens: &[String],
    chat: uuid::Uuid,
    publisher: &Publisher,
    clients: usize,
) -> anyhow::Result<(f64, f64, f64)> {
    // One connection first, so one-time allocations (schema, buffers, pools) are not counted.
    let warm = Subscribers::open(ws_url, tokens, chat, 1).await?;
    warm.wait_live(publisher).await?;
    tokio::time::sleep(SETTLE).await;
    let before = rss_kib(pid);
    let subscribers = Subscribers::open(ws_url, tokens, chat, clients).await?;
    subscribers.wait_live(publisher).await?;
    tokio::time::sleep(SETTLE).await;
    let after = rss_kib(pid);
    subscribers.close().await?;
    warm.close().await?;
    Ok((
        after.saturating_sub(before) as f64 / clients as f64,
        before as f64 / 1024.0,
        after as f64 / 1024.0,
    ))
}
