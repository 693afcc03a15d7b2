//! Group commit for sends on SQLite. SQLite has one writer, and a send written alone is five
//! statements in that writer's turn (BEGIN, take the chat's next `seq`, insert, move the sender's
//! markers, COMMIT); under load the turn, not the work, is the limit. Here every send on SQLite
//! is queued to one writer task, which takes whatever queued while it wrote the previous batch
//! and writes it in one transaction: per chat one statement takes the batch's numbers, one
//! multi-row INSERT writes every message, per chat one statement moves the senders' markers, then
//! one COMMIT. Nothing is acknowledged before that commit; each caller gets its own message, and
//! the events are published after the commit in `seq` order. When a statement of the batch fails
//! it is rolled back whole and each send is written again alone, so a bad send fails only itself.
//! PostgreSQL needs none of this: a send there is one statement (`one_statement`) and concurrent
//! commits already share their WAL flushes.
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, TransactionTrait,
    sea_query::{CaseStatement, Expr, ExprTrait, Func},
};
use tokio::sync::{Mutex, mpsc, oneshot};
use uuid::Uuid;

use super::Draft;
use crate::{
    entity::{chat, chat_member, file, message},
    error::{AppError, AppResult},
    events::{Bus, Event, Topic},
    metrics::Metrics,
};

/// Most sends one transaction carries (its INSERT binds 12 values per message, far below
/// SQLite's 32,766).
const BATCH_MAX: usize = 256;

/// The way in to the writer; cheap to clone. The writer stops once every clone is dropped,
/// after writing what was queued.
#[derive(Clone)]
pub struct SendQueue {
    jobs: mpsc::Sender<Job>,
}

/// One queued send.
struct Job {
    id: Uuid,
    draft: Draft,
    /// Uploads to attach, already checked to be the sender's and unattached.
    file_ids: Vec<Uuid>,
    answer: oneshot::Sender<AppResult<message::Model>>,
}

impl SendQueue {
    /// Starts the writer. `turn` is the SQLite write turn other transactions take
    /// (`in_transaction`), so a batch never meets them in SQLite's busy handler.
    pub fn start(
        db: DatabaseConnection,
        bus: Bus,
        turn: Arc<Mutex<()>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (jobs, queued) = mpsc::channel(BATCH_MAX * 4);
        tokio::spawn(writer(db, bus, turn, metrics, queued));
        Self { jobs }
    }

    /// Writes `draft` (and binds `file_ids` to it) in the next batch; answers once that batch is
    /// committed, with the message or this send's own error.
    pub(super) async fn send(
        &self,
        draft: Draft,
        file_ids: Vec<Uuid>,
    ) -> AppResult<message::Model> {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            id: Uuid::now_v7(),
            draft,
            file_ids,
            answer,
        };
        if self.jobs.send(job).await.is_err() {
            return Err(AppError::unavailable("the message writer has stopped"));
        }
        answered
            .await
            .unwrap_or_else(|_| Err(AppError::internal("the message writer stopped mid-batch")))
    }
}

/// Takes what has queued (at least one send, at most `BATCH_MAX`), writes it, publishes, answers;
/// again until every `SendQueue` is gone.
async fn writer(
    db: DatabaseConnection,
    bus: Bus,
    turn: Arc<Mutex<()>>,
    metrics: Arc<Metrics>,
    mut queued: mpsc::Receiver<Job>,
) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while queued.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let written = {
            let _turn = turn.lock().await;
            write(&db, &jobs).await
        };
        metrics.send_batches.inc();
        metrics.batched_sends.inc_by(jobs.len() as u64);
        let mut events = Vec::new();
        for message in written.iter().flatten() {
            let event = Event::MessageCreated {
                message: message.clone(),
            };
            events.push((Topic::Chat(message.chat_id), event));
        }
        bus.publish_all(events).await;
        for (job, result) in jobs.into_iter().zip(written) {
            // A caller that went away does not need its answer; its message stands.
            let _ = job.answer.send(result);
        }
    }
}

/// The batch's results, one per job in order: all together, or (when a statement failed) each
/// send alone.
async fn write(db: &DatabaseConnection, jobs: &[Job]) -> Vec<AppResult<message::Model>> {
    match together(db, jobs).await {
        Ok(results) => results,
        Err(error) if jobs.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::debug!(
                error = %error.diagnostic(),
                sends = jobs.len(),
                "a batch of sends failed; writing each alone"
            );
            let mut results = Vec::with_capacity(jobs.len());
            for job in jobs {
                let result = match together(db, std::slice::from_ref(job)).await {
                    Ok(mut one) => one.pop().expect("one result per job"),
                    Err(error) => Err(error),
                };
                results.push(result);
            }
            results
        }
    }
}

/// Writes `jobs` in one transaction. `Err` means nothing was written; inside `Ok`, a send whose
/// chat is gone has its own NOT_FOUND and wrote nothing.
async fn together(
    db: &DatabaseConnection,
    jobs: &[Job],
) -> AppResult<Vec<AppResult<message::Model>>> {
    let txn = db.begin().await?;
    let mut results: Vec<Option<AppResult<message::Model>>> = jobs.iter().map(|_| None).collect();
    let mut rows: Vec<message::Model> = Vec::with_capacity(jobs.len());
    let now = Utc::now();
    for (chat_id, indexes) in by_chat(jobs) {
        // The chat's last message is its main timeline's: a reply in a thread is not.
        let last_main = indexes
            .iter()
            .rev()
            .find(|&&i| jobs[i].draft.thread_root_id.is_none())
            .map(|&i| jobs[i].id);
        let Some((last_seq, created_at)) =
            take_numbers(&txn, chat_id, indexes.len(), last_main, now).await?
        else {
            for i in indexes {
                results[i] = Some(Err(AppError::NotFound("chat not found".into())));
            }
            continue;
        };
        let first_seq = last_seq - indexes.len() as i64 + 1;
        for (n, i) in indexes.into_iter().enumerate() {
            let message = row(&jobs[i], first_seq + n as i64, created_at);
            results[i] = Some(Ok(message.clone()));
            rows.push(message);
        }
    }
    if !rows.is_empty() {
        message::Entity::insert_many(rows.iter().cloned().map(IntoActiveModel::into_active_model))
            .exec_without_returning(&txn)
            .await?;
        move_markers(&txn, &rows).await?;
    }
    for (job, result) in jobs.iter().zip(&results) {
        if let (false, Some(Ok(message))) = (job.file_ids.is_empty(), result) {
            file::Entity::update_many()
                .col_expr(file::Column::MessageId, Expr::value(message.id))
                .col_expr(file::Column::ChatId, Expr::value(message.chat_id))
                .filter(file::Column::Id.is_in(job.file_ids.clone()))
                .exec(&txn)
                .await?;
        }
    }
    txn.commit().await?;
    Ok(results
        .into_iter()
        .map(|r| r.expect("every job has a result"))
        .collect())
}

/// The jobs' positions grouped by chat, chats in order of first appearance, positions in order.
fn by_chat(jobs: &[Job]) -> Vec<(Uuid, Vec<usize>)> {
    let mut chats: Vec<(Uuid, Vec<usize>)> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        match chats.iter_mut().find(|(id, _)| *id == job.draft.chat_id) {
            Some((_, indexes)) => indexes.push(i),
            None => chats.push((job.draft.chat_id, vec![i])),
        }
    }
    chats
}

/// Takes `count` numbers for the chat in one statement: its new `last_seq` (the batch has the
/// `count` numbers up to it) and the batch's time, never behind the chat's previous activity, so
/// `createdAt` never goes backwards against `seq`; `last_message_id` becomes the chat's last
/// message when given (None when the batch is only replies in threads). None when the chat is
/// gone.
pub(super) async fn take_numbers<C: ConnectionTrait>(
    db: &C,
    chat_id: Uuid,
    count: usize,
    last_message_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> AppResult<Option<(i64, DateTime<Utc>)>> {
    let mut bump = chat::Entity::update_many()
        .col_expr(
            chat::Column::LastSeq,
            Expr::col(chat::Column::LastSeq).add(count as i64),
        )
        .col_expr(
            chat::Column::LastActivityAt,
            Func::greatest([Expr::col(chat::Column::LastActivityAt), Expr::value(now)]).into(),
        );
    if let Some(last_message_id) = last_message_id {
        bump = bump.col_expr(chat::Column::LastMessageId, Expr::value(last_message_id));
    }
    let bumped = bump
        .filter(chat::Column::Id.eq(chat_id))
        .exec_with_returning(db)
        .await?;
    Ok(bumped
        .into_iter()
        .next()
        .map(|chat| (chat.last_seq, chat.last_activity_at)))
}

fn row(job: &Job, seq: i64, created_at: DateTime<Utc>) -> message::Model {
    let draft = &job.draft;
    message::Model {
        id: job.id,
        chat_id: draft.chat_id,
        seq,
        sender_id: draft.sender_id,
        kind: draft.kind,
        content: draft.content.clone(),
        reply_to_id: draft.reply_to_id,
        forwarded_from_message_id: draft.forwarded_from_message_id,
        forwarded_from_sender_id: draft.forwarded_from_sender_id,
        created_at,
        edited_at: None,
        deleted_at: None,
        thread_root_id: draft.thread_root_id,
    }
}

/// Moves each sender's read and delivery markers to their last message of the batch: one
/// statement per chat, whatever the number of senders.
async fn move_markers(txn: &DatabaseTransaction, rows: &[message::Model]) -> AppResult<()> {
    let mut chats: Vec<(Uuid, Vec<(Uuid, i64)>)> = Vec::new();
    for message in rows {
        let Some(sender) = message.sender_id else {
            continue;
        };
        let senders = match chats.iter_mut().find(|(id, _)| *id == message.chat_id) {
            Some((_, senders)) => senders,
            None => {
                chats.push((message.chat_id, Vec::new()));
                &mut chats.last_mut().expect("just pushed").1
            }
        };
        match senders.iter_mut().find(|(user, _)| *user == sender) {
            // Rows of a chat come in `seq` order: the later one wins.
            Some((_, seq)) => *seq = message.seq,
            None => senders.push((sender, message.seq)),
        }
    }
    for (chat_id, senders) in chats {
        let seq_of = senders
            .iter()
            .fold(CaseStatement::new(), |case, (user, seq)| {
                case.case(chat_member::Column::UserId.eq(*user), Expr::value(*seq))
            })
            .finally(Expr::col(chat_member::Column::LastReadSeq));
        let users: Vec<Uuid> = senders.iter().map(|(user, _)| *user).collect();
        chat_member::Entity::update_many()
            .col_expr(chat_member::Column::LastReadSeq, seq_of.clone().into())
            .col_expr(chat_member::Column::LastDeliveredSeq, seq_of.into())
            .filter(chat_member::Column::ChatId.eq(chat_id))
            .filter(chat_member::Column::UserId.is_in(users))
            .exec(txn)
            .await?;
    }
    Ok(())
}
