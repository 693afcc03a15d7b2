//! Scenario 4, reading: `chats(first: 50)` with members, lastMessage and unreadCount for a user in
//! many chats full of messages, and `messages(first: 50)` deep in a 100,000-message chat (by
//! cursor and by offset); p50 / p99 latency and SQL statements per request, against the same
//! data read with hand-written SQL through the same driver. Messages are seeded with bulk
//! inserts (the API would take too long), with the columns goftgu writes.
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, QueryBuilder};
use serde_json::json;
use uuid::Uuid;

use crate::{
    Options,
    client::Api,
    db::{Backend, RawDb},
    report::{Better, Report, Scope, percentile},
    server::{Goftgu, Launch},
    with_pool,
};

const CHAT_LIST: &str = "query { chats(first: 50) { totalCount nodes { id title memberCount unreadCount lastActivityAt lastMessage { id content createdAt sender { id username } } members(first: 5) { nodes { role user { id username } } } } pageInfo { hasNextPage endCursor } } }";
const HISTORY: &str = "query($chat: ID!, $after: String) { messages(chatId: $chat, first: 50, after: $after) { nodes { id kind content createdAt sender { id username } } pageInfo { hasNextPage endCursor } } }";
const HISTORY_OFFSET: &str = "query($chat: ID!, $skip: Int!) { messages(chatId: $chat, skip: $skip, limit: 50) { nodes { id kind content createdAt sender { id username } } } }";

/// The sizes the machine holds in a few seconds of seeding.
struct Scale {
    chats: usize,
    per_chat: i64,
    deep: i64,
}

pub async fn run(options: &Options, backend: &Backend, report: &mut Report) -> anyhow::Result<()> {
    let scale = if options.quick {
        Scale {
            chats: 60,
            per_chat: 100,
            deep: 10_000,
        }
    } else {
        Scale {
            chats: 200,
            per_chat: 1_000,
            deep: 100_000,
        }
    };
    let dir = tempfile::tempdir()?;
    let url = backend.fresh(dir.path()).await?;
    let server = Goftgu::start(&Launch::new(url.clone(), dir.path().to_path_buf())).await?;
    let api = Api::new(server.graphql_url());
    let raw = RawDb::connect(&url).await?;
    let viewer = api.register("reader").await?;
    let others = [
        api.register("friend1").await?,
        api.register("friend2").await?,
    ];
    let member_ids: Vec<Uuid> = others.iter().map(|u| u.id).collect();
    let senders = [viewer.id, others[0].id, others[1].id];
    let seeding = Instant::now();
    let base = Utc::now() - chrono::Duration::days(2);
    for i in 0..scale.chats {
        let chat = api
            .create_group(&viewer, &format!("group {i}"), &member_ids)
            .await?;
        let start = base + chrono::Duration::minutes(i as i64);
        seed_chat(&raw, chat, scale.per_chat, &senders, start).await?;
        // A few unread messages in most chats.
        mark_read(&raw, chat, viewer.id, scale.per_chat - (i as i64 % 30)).await?;
    }
    let deep_chat = api
        .create_group(&others[0], "deep history", &[viewer.id])
        .await?;
    seed_chat(
        &raw,
        deep_chat,
        scale.deep,
        &senders,
        base - chrono::Duration::days(30),
    )
    .await?;
    let seed_note = format!(
        "{} chats × {} messages + {} in one chat, seeded in {:.0} s",
        scale.chats,
        scale.per_chat,
        scale.deep,
        seeding.elapsed().as_secs_f64()
    );
    eprintln!("  chat list: {seed_note}");

    let (warm, window) = if options.quick {
        (Duration::from_millis(300), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(3))
    };
    let scope = Scope {
        scenario: "4 reading",
        backend: backend.name(),
        baseline_is: "hand-written SQL, same driver",
    };

    // The chat list.
    let check = api.call(Some(&viewer.token), CHAT_LIST, json!({})).await?;
    anyhow::ensure!(
        check["chats"]["nodes"].as_array().map(Vec::len) == Some(50),
        "chat list did not return 50 chats: {check}"
    );
    // Captures only references, so the same closure serves both measurements.
    let list = || async {
        api.call(Some(&viewer.token), CHAT_LIST, json!({}))
            .await
            .map(drop)
    };
    let ours = sample(warm, window, list).await?;
    let theirs = sample(warm, window, || raw_chat_list(&raw, viewer.id)).await?;
    let statements = statements_of(&server, list).await?;
    latency_rows(
        report,
        &scope,
        "chats(first: 50), members, lastMessage, unreadCount",
        ours,
        theirs,
        &seed_note,
    );
    report.push(scope.row(
        "chats(first: 50), members, lastMessage, unreadCount",
        "SQL statements",
        "per request",
        Better::Lower,
        statements,
        RAW_CHAT_LIST_STATEMENTS,
        "",
    ));

    // History far from the newest message, by cursor.
    let first = api
        .call(
            Some(&viewer.token),
            HISTORY,
            json!({ "chat": deep_chat, "after": null }),
        )
        .await?;
    let after = first["messages"]["pageInfo"]["endCursor"].clone();
    let vars = json!({ "chat": deep_chat, "after": after });
    let case = format!(
        "messages(first: 50, after:) {} messages from the newest",
        scale.deep - 50
    );
    let page = || async {
        api.call(Some(&viewer.token), HISTORY, vars.clone())
            .await
            .map(drop)
    };
    let ours = sample(warm, window, page).await?;
    let theirs = sample(warm, window, || raw_history(&raw, deep_chat, 50)).await?;
    let statements = statements_of(&server, page).await?;
    latency_rows(report, &scope, &case, ours, theirs, "");
    report.push(scope.row(
        &case,
        "SQL statements",
        "per request",
        Better::Lower,
        statements,
        1.0,
        "",
    ));

    // History by offset (page numbers), half-way in.
    let skip = scale.deep / 2;
    let vars = json!({ "chat": deep_chat, "skip": skip });
    let ours = sample(warm, window, || async {
        api.call(Some(&viewer.token), HISTORY_OFFSET, vars.clone())
            .await
            .map(drop)
    })
    .await?;
    let theirs = sample(warm, window, || raw_history_offset(&raw, deep_chat, skip)).await?;
    latency_rows(
        report,
        &scope,
        &format!("messages(skip: {skip}, limit: 50)"),
        ours,
        theirs,
        "",
    );
    raw.close().await;
    Ok(())
}

fn latency_rows(
    report: &mut Report,
    scope: &Scope,
    case: &str,
    mut ours: Vec<u32>,
    mut theirs: Vec<u32>,
    note: &str,
) {
    report.push(scope.row(
        case,
        "p50 latency",
        "ms",
        Better::Lower,
        percentile(&mut ours, 50.0) / 1000.0,
        percentile(&mut theirs, 50.0) / 1000.0,
        note,
    ));
    report.push(scope.row(
        case,
        "p99 latency",
        "ms",
        Better::Lower,
        percentile(&mut ours, 99.0) / 1000.0,
        percentile(&mut theirs, 99.0) / 1000.0,
        "",
    ));
}

/// Latencies (µs) of `op` run back to back for `window`, after `warm` of the same.
async fn sample<F, Fut>(warm: Duration, window: Duration, op: F) -> anyhow::Result<Vec<u32>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let warm_until = Instant::now() + warm;
    while Instant::now() < warm_until {
        op().await?;
    }
    let mut latencies = Vec::new();
    let end = Instant::now() + window;
    while Instant::now() < end && latencies.len() < 20_000 {
        let start = Instant::now();
        op().await?;
        latencies.push(start.elapsed().as_micros() as u32);
    }
    Ok(latencies)
}

/// SQL statements the server ran for one `op` (fewest of three tries, so a background task's
/// statement landing in between does not count).
async fn statements_of<F, Fut>(server: &Goftgu, op: F) -> anyhow::Result<f64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let http = reqwest::Client::new();
    let mut fewest = u64::MAX;
    for _ in 0..3 {
        let before = server.sql_statements(&http).await?;
        op().await?;
        fewest = fewest.min(server.sql_statements(&http).await? - before);
    }
    Ok(fewest as f64)
}

/// Inserts `count` messages (seq 1..=count, senders in turn, a second apart from `start`) in
/// batches, and points the chat's last message and activity at the newest.
async fn seed_chat(
    raw: &RawDb,
    chat: Uuid,
    count: i64,
    senders: &[Uuid],
    start: DateTime<Utc>,
) -> anyhow::Result<()> {
    const BATCH: i64 = 500;
    let mut last = (Uuid::nil(), start);
    let mut seq = 1;
    while seq <= count {
        let rows: Vec<(Uuid, i64, Uuid, String, DateTime<Utc>)> = (seq..(seq + BATCH)
            .min(count + 1))
            .map(|s| {
                (
                    Uuid::now_v7(),
                    s,
                    senders[s as usize % senders.len()],
                    format!("seeded message number {s} with a few more words in it"),
                    start + chrono::Duration::seconds(s),
                )
            })
            .collect();
        last = (rows[rows.len() - 1].0, rows[rows.len() - 1].4);
        with_pool!(raw, p => {
            let mut insert = QueryBuilder::new(
                "INSERT INTO messages (id, chat_id, seq, sender_id, kind, content, created_at) ",
            );
            insert.push_values(&rows, |mut b, (id, s, sender, content, at)| {
                b.push_bind(*id)
                    .push_bind(chat)
                    .push_bind(*s)
                    .push_bind(*sender)
                    .push_bind("TEXT")
                    .push_bind(content.clone())
                    .push_bind(*at);
            });
            insert.build().execute(p).await?;
        });
        seq += BATCH;
    }
    let sql = raw.sql(
        "UPDATE chats SET last_seq = ?, last_message_id = ?, last_activity_at = ? WHERE id = ?",
    );
    with_pool!(raw, p => {
        sqlx::query(sql).bind(count).bind(last.0).bind(last.1).bind(chat).execute(p).await?;
    });
    Ok(())
}

async fn mark_read(raw: &RawDb, chat: Uuid, user: Uuid, seq: i64) -> anyhow::Result<()> {
    let sql =
        raw.sql("UPDATE chat_members SET last_read_seq = ? WHERE chat_id = ? AND user_id = ?");
    with_pool!(raw, p => {
        sqlx::query(sql).bind(seq).bind(chat).bind(user).execute(p).await?;
    });
    Ok(())
}

/// id, name, last activity, last message id, my role, my read marker.
type PageRow = (
    Uuid,
    Option<String>,
    DateTime<Utc>,
    Option<Uuid>,
    String,
    i64,
);
/// id, kind, content, created at, sender id, sender username.
type MessageRow = (
    Uuid,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<Uuid>,
    Option<String>,
);

/// Statements the hand-written chat list takes.
const RAW_CHAT_LIST_STATEMENTS: f64 = 5.0;

/// The same chat list in five statements: count, page, members (with users), last messages
/// (with senders), unread counts.
async fn raw_chat_list(raw: &RawDb, viewer: Uuid) -> anyhow::Result<()> {
    let count = raw.sql("SELECT COUNT(*) FROM chat_members WHERE user_id = ? AND archived = false");
    let page = raw.sql(
        "SELECT c.id, c.name, c.last_activity_at, c.last_message_id, m.role, m.last_read_seq \
         FROM chat_members m JOIN chats c ON c.id = m.chat_id \
         WHERE m.user_id = ? AND m.archived = false \
         ORDER BY c.last_activity_at DESC, c.id DESC LIMIT 51",
    );
    with_pool!(raw, p => {
        let _: (i64,) = sqlx::query_as(count).bind(viewer).fetch_one(p).await?;
        let rows: Vec<PageRow> =
            sqlx::query_as(page).bind(viewer).fetch_all(p).await?;
        let chats: Vec<Uuid> = rows.iter().take(50).map(|r| r.0).collect();
        let last: Vec<Uuid> = rows.iter().take(50).filter_map(|r| r.3).collect();
        let marks = placeholders(chats.len());
        let members = raw.sql(&format!(
            "SELECT cm.chat_id, cm.role, u.id, u.username FROM chat_members cm \
             JOIN users u ON u.id = cm.user_id WHERE cm.chat_id IN ({marks})"));
        let mut q = sqlx::query_as::<_, (Uuid, String, Uuid, String)>(members);
        for c in &chats { q = q.bind(*c); }
        q.fetch_all(p).await?;
        let marks = placeholders(last.len());
        let messages = raw.sql(&format!(
            "SELECT m.id, m.chat_id, m.content, m.created_at, u.id, u.username FROM messages m \
             LEFT JOIN users u ON u.id = m.sender_id WHERE m.id IN ({marks})"));
        let mut q = sqlx::query_as::<_, (Uuid, Uuid, Option<String>, DateTime<Utc>, Option<Uuid>, Option<String>)>(messages);
        for m in &last { q = q.bind(*m); }
        q.fetch_all(p).await?;
        let marks = placeholders(chats.len());
        let unread = raw.sql(&format!(
            "SELECT m.chat_id, COUNT(*) FROM messages m \
             JOIN chat_members cm ON cm.chat_id = m.chat_id AND cm.user_id = ? \
             WHERE m.seq > cm.last_read_seq AND m.deleted_at IS NULL \
             AND (m.sender_id IS NULL OR m.sender_id <> ?) AND m.chat_id IN ({marks}) \
             GROUP BY m.chat_id"));
        let mut q = sqlx::query_as::<_, (Uuid, i64)>(unread).bind(viewer).bind(viewer);
        for c in &chats { q = q.bind(*c); }
        q.fetch_all(p).await?;
    });
    Ok(())
}

/// `?, ?, …` (`n` of them); `raw.sql` numbers them for PostgreSQL together with the rest.
fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// 50 messages after the 50th, with senders, in one statement.
async fn raw_history(raw: &RawDb, chat: Uuid, after_seq: i64) -> anyhow::Result<()> {
    let sql = raw.sql(
        "SELECT m.id, m.kind, m.content, m.created_at, u.id, u.username FROM messages m \
         LEFT JOIN users u ON u.id = m.sender_id WHERE m.chat_id = ? AND m.seq > ? \
         ORDER BY m.seq LIMIT 51",
    );
    with_pool!(raw, p => {
        let rows: Vec<MessageRow> =
            sqlx::query_as(sql).bind(chat).bind(after_seq).fetch_all(p).await?;
        anyhow::ensure!(rows.len() == 51, "raw history returned {} rows", rows.len());
    });
    Ok(())
}

/// 50 messages `skip` from the newest, with senders.
async fn raw_history_offset(raw: &RawDb, chat: Uuid, skip: i64) -> anyhow::Result<()> {
    let sql = raw.sql(
        "SELECT m.id, m.kind, m.content, m.created_at, u.id, u.username FROM \
         (SELECT * FROM messages WHERE chat_id = ? ORDER BY seq DESC LIMIT 50 OFFSET ?) m \
         LEFT JOIN users u ON u.id = m.sender_id ORDER BY m.seq DESC",
    );
    with_pool!(raw, p => {
        let rows: Vec<MessageRow> =
            sqlx::query_as(sql).bind(chat).bind(skip).fetch_all(p).await?;
        anyhow::ensure!(rows.len() == 50, "raw offset history returned {} rows", rows.len());
    });
    Ok(())
}
