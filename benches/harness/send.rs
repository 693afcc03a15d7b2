//! Scenario 1, send rate: `sendMessage` mutations per second with 1, 8 and 64 concurrent senders
//! in one group, against the same number of raw single-row inserts of an equivalent message row
//! into the same table through the same driver and durability settings (the storage limit).
use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use uuid::Uuid;

use crate::{
    Options,
    client::{Api, stamped},
    db::{Backend, RawDb},
    report::{Better, Report, Scope},
    server::{Goftgu, Launch},
    with_pool,
};

const SENDERS: [usize; 3] = [1, 8, 64];
/// Distinct users behind the concurrent senders (registration costs an argon2 hash each).
const USERS: usize = 8;

pub async fn run(options: &Options, backend: &Backend, report: &mut Report) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let url = backend.fresh(dir.path()).await?;
    let server = Goftgu::start(&Launch::new(url.clone(), dir.path().to_path_buf())).await?;
    let api = Api::new(server.graphql_url());
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(api.register(&format!("sender{i}")).await?);
    }
    let members: Vec<Uuid> = users[1..].iter().map(|u| u.id).collect();
    let chat = api.create_group(&users[0], "send rate", &members).await?;
    let raw = RawDb::connect(&url).await?;
    let (warm, measure) = if options.quick {
        (Duration::from_millis(300), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(4))
    };
    let scope = Scope {
        scenario: "1 send rate",
        backend: backend.name(),
        baseline_is: "raw INSERT, same driver",
    };
    // Raw rows take sequence numbers far above the ones goftgu assigns in the same chat.
    let raw_seq = Arc::new(AtomicI64::new(1_000_000_000));
    for senders in SENDERS {
        let (api, users_for_api) = (api.clone(), users.clone());
        let goftgu = drive(senders, warm, measure, move |i| {
            let api = api.clone();
            let user = users_for_api[i % USERS].clone();
            async move { api.send(&user, chat, &stamped('s')).await }
        })
        .await?;
        let (raw_for_op, raw_seq, ids) = (
            raw.clone(),
            raw_seq.clone(),
            users.iter().map(|u| u.id).collect::<Vec<_>>(),
        );
        let baseline = drive(senders, warm, measure, move |i| {
            let raw = raw_for_op.clone();
            let sender = ids[i % USERS];
            let seq = raw_seq.fetch_add(1, Ordering::Relaxed);
            async move { insert_message(&raw, chat, seq, sender).await }
        })
        .await?;
        report.push(scope.row(
            format!("{senders} sender{}", if senders == 1 { "" } else { "s" }),
            "messages/s",
            "msg/s",
            Better::Higher,
            goftgu,
            baseline,
            "",
        ));
    }
    raw.close().await;
    Ok(())
}

/// Runs `concurrency` loops of `op` (given the loop index) for `warm`, then counts completions
/// for `measure`; returns operations per second.
async fn drive<F, Fut>(
    concurrency: usize,
    warm: Duration,
    measure: Duration,
    op: F,
) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let counting_from = Instant::now() + warm;
    let end = counting_from + measure;
    let done = Arc::new(AtomicU64::new(0));
    let op = Arc::new(op);
    let mut loops = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        let done = done.clone();
        let op = op.clone();
        loops.spawn(async move {
            loop {
                op(i).await?;
                let now = Instant::now();
                if now >= end {
                    return anyhow::Ok(());
                }
                if now >= counting_from {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(result) = loops.join_next().await {
        result??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / measure.as_secs_f64())
}

/// One message row, inserted on its own (autocommit), as goftgu's sendMessage writes it.
pub async fn insert_message(raw: &RawDb, chat: Uuid, seq: i64, sender: Uuid) -> anyhow::Result<()> {
    let sql = raw.sql(
        "INSERT INTO messages (id, chat_id, seq, sender_id, kind, content, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    );
    let content = stamped('s');
    let now = chrono::Utc::now();
    with_pool!(raw, p => {
        sea_orm::sqlx::query(sql)
            .bind(Uuid::now_v7())
            .bind(chat)
            .bind(seq)
            .bind(sender)
            .bind("TEXT")
            .bind(&content)
            .bind(now)
            .execute(p)
            .await?;
    });
    Ok(())
}
