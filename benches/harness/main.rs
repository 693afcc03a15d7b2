//! `cargo bench`: measures a release goftgu against the raw limit of the same machine in the same
//! run (raw inserts through the same driver, a minimal tokio-tungstenite broadcast server, hand-
//! written SQL), so every figure is printed with its baseline and a ratio that survives a noisy
//! machine. Clients are written here and share no code with the server beyond the schema.
//!
//! Flags (after `cargo bench --`): `--quick` (smaller sizes, a smoke run), `--only <scenario>`
//! (fixed, send, fanout, idle, chatlist, cluster; repeatable), `--out <file.json>`.
mod baseline;
mod chat_list;
mod client;
mod db;
mod fanout;
mod fixed;
mod idle;
mod report;
mod send;
mod server;
mod system;

use std::time::Instant;

use anyhow::Context;
use report::Report;

/// What one run was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    pub quick: bool,
    only: Vec<String>,
    out: std::path::PathBuf,
}

impl Options {
    fn parse() -> anyhow::Result<Self> {
        let mut options = Options {
            quick: false,
            only: Vec::new(),
            out: std::path::PathBuf::from("target/bench/latest.json"),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--only" => options
                    .only
                    .push(args.next().context("--only needs a name")?),
                "--out" => options.out = args.next().context("--out needs a path")?.into(),
                // `cargo bench` passes `--bench`; a name filter may follow it.
                "--bench" => {}
                other if other.starts_with('-') => anyhow::bail!("unknown flag {other}"),
                _ => {}
            }
        }
        Ok(options)
    }

    pub fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("--baseline-server") => {
            let port: u16 = args.next().context("port")?.parse()?;
            return baseline::serve(port);
        }
        Some("--baseline-http") => {
            let port: u16 = args.next().context("port")?.parse()?;
            return baseline::serve_http(port);
        }
        _ => {}
    }
    let options = Options::parse()?;
    system::raise_open_file_limit()?;
    // The server processes run on the first core, this load generator on the last one.
    system::pin_to_core(system::client_core());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

async fn run(options: Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut report = Report::new(system::machine());
    let mut backends = vec![db::Backend::Sqlite];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        backends.push(db::Backend::Postgres(url));
    }
    let redis = std::env::var("TEST_REDIS_URL").ok();
    for backend in &backends {
        eprintln!("== backend: {}", backend.name());
        // Databases of an interrupted run; this run's own are dropped at its end.
        backend.drop_leftovers().await?;
        if options.wants("fixed") {
            fixed::run(&options, backend, &mut report).await?;
        }
        if options.wants("send") {
            send::run(&options, backend, &mut report).await?;
        }
        if options.wants("fanout") {
            fanout::run(&options, backend, &mut report).await?;
        }
        if options.wants("perviewer") {
            fanout::run_per_viewer(&options, backend, &mut report).await?;
        }
        if options.wants("idle") {
            idle::run(&options, backend, &mut report).await?;
        }
        if options.wants("chatlist") {
            chat_list::run(&options, backend, &mut report).await?;
        }
        if options.wants("cluster") {
            match &redis {
                Some(url) => fanout::run_cluster(&options, backend, url, &mut report).await?,
                None => eprintln!("cluster: not run (TEST_REDIS_URL is not set)"),
            }
        }
    }
    for backend in &backends {
        backend.drop_leftovers().await?;
    }
    report.elapsed_seconds = started.elapsed().as_secs_f64();
    report.write(&options.out)?;
    println!("{}", report.markdown());
    eprintln!(
        "wrote {} in {:.0} s",
        options.out.display(),
        report.elapsed_seconds
    );
    Ok(())
}
