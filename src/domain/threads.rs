//! Threads: any message of a chat (not itself a thread reply, not deleted) can start one; a reply
//! in it is a message of the chat with `thread_root_id`, on the chat's `seq` line (so it is
//! delivered live, with its root id, like any message) but out of the main timeline and its
//! unread count. The root's author and everyone who replies follow the thread; a follower's
//! unread replies are counted from their own marker. Reading a thread needs the right to read
//! its chat.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, OnConflict},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access, message_access},
    validate,
};
use crate::{
    entity::{message, thread_follow},
    error::{AppError, AppResult},
    state::AppState,
};

/// Largest page of replies.
pub const PAGE_MAX: u64 = 100;
/// Most threads one `threads` list gives.
pub const LIST_MAX: u64 = 50;
/// Repliers shown on a root, most recent first.
pub const REPLIERS_SHOWN: usize = 3;

/// The root of the thread a new reply in `chat_id` goes to.
pub(super) async fn root_for_reply(
    app: &AppState,
    chat_id: Uuid,
    root_id: Uuid,
) -> AppResult<message::Model> {
    let root = message::Entity::find_by_id(root_id).one(&app.db).await?;
    match root {
        Some(root)
            if root.chat_id == chat_id
                && root.thread_root_id.is_none()
                && root.deleted_at.is_none() =>
        {
            Ok(root)
        }
        _ => Err(AppError::bad_input(
            "threadRootId",
            "threadRootId must be a message of the same chat that is not deleted nor itself a reply in a thread",
        )),
    }
}

/// After `reply` in the thread of `root`, in the caller's transaction: the replier follows it
/// with everything read, and the root's author follows it.
pub(super) async fn replied(
    db: &impl ConnectionTrait,
    root: &message::Model,
    reply: &message::Model,
) -> AppResult<()> {
    let now = Utc::now();
    if let Some(replier) = reply.sender_id {
        thread_follow::Entity::insert(thread_follow::ActiveModel {
            root_id: Set(root.id),
            user_id: Set(replier),
            chat_id: Set(root.chat_id),
            last_read_seq: Set(reply.seq),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([thread_follow::Column::RootId, thread_follow::Column::UserId])
                .update_column(thread_follow::Column::LastReadSeq)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    if let Some(author) = root.sender_id.filter(|&a| Some(a) != reply.sender_id) {
        thread_follow::Entity::insert(thread_follow::ActiveModel {
            root_id: Set(root.id),
            user_id: Set(author),
            chat_id: Set(root.chat_id),
            last_read_seq: Set(root.seq),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([thread_follow::Column::RootId, thread_follow::Column::UserId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

/// A thread's root, when the caller has `need` on its chat.
async fn root_access(
    app: &AppState,
    viewer: &Viewer,
    root_id: Uuid,
    need: Need,
) -> AppResult<message::Model> {
    let (root, _) = message_access(app, viewer, root_id, need).await?;
    if root.thread_root_id.is_some() {
        return Err(AppError::bad_input(
            "rootId",
            "rootId is a reply in a thread, not the message that started it",
        ));
    }
    Ok(root)
}

/// Replies of a thread, oldest first, after `seq` `after`.
pub async fn replies(
    app: &AppState,
    viewer: &Viewer,
    root_id: Uuid,
    first: u64,
    after: Option<i64>,
) -> AppResult<(Vec<message::Model>, bool)> {
    validate::page_size("first", first as i64, PAGE_MAX)?;
    root_access(app, viewer, root_id, Need::Read).await?;
    let mut query = message::Entity::find().filter(message::Column::ThreadRootId.eq(root_id));
    if let Some(after) = after {
        query = query.filter(message::Column::Seq.gt(after));
    }
    let mut found = query
        .order_by_asc(message::Column::Seq)
        .limit(first + 1)
        .all(&app.db)
        .await?;
    let more = found.len() as u64 > first;
    found.truncate(first as usize);
    Ok((found, more))
}

/// How many replies a thread holds (deleted ones included: they stay in it, like in history).
pub async fn reply_total(app: &AppState, root_id: Uuid) -> AppResult<u64> {
    Ok(message::Entity::find()
        .filter(message::Column::ThreadRootId.eq(root_id))
        .count(&app.db)
        .await?)
}

/// What a root shows of its thread.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Replies not deleted.
    pub replies: u64,
    pub last_reply_at: Option<DateTime<Utc>>,
    /// The latest repliers, most recent first (at most `REPLIERS_SHOWN`).
    pub repliers: Vec<Uuid>,
}

#[derive(FromQueryResult)]
struct Counted {
    root: Uuid,
    n: i64,
    last_at: Option<DateTime<Utc>>,
}

#[derive(FromQueryResult)]
struct Replier {
    root: Uuid,
    sender: Uuid,
    last: i64,
}

/// The threads of `roots` (two statements for any number).
pub async fn stats(app: &AppState, roots: &[Uuid]) -> AppResult<HashMap<Uuid, Stats>> {
    if roots.is_empty() {
        return Ok(HashMap::new());
    }
    let in_threads = || {
        message::Entity::find()
            .filter(message::Column::ThreadRootId.is_in(roots.iter().copied()))
            .filter(message::Column::DeletedAt.is_null())
            .select_only()
            .column_as(message::Column::ThreadRootId, "root")
    };
    let counted = in_threads()
        .column_as(message::Column::Id.count(), "n")
        .column_as(message::Column::CreatedAt.max(), "last_at")
        .group_by(message::Column::ThreadRootId)
        .into_model::<Counted>()
        .all(&app.db)
        .await?;
    let repliers = in_threads()
        .column_as(message::Column::SenderId, "sender")
        .column_as(message::Column::Seq.max(), "last")
        .filter(message::Column::SenderId.is_not_null())
        .group_by(message::Column::ThreadRootId)
        .group_by(message::Column::SenderId)
        .into_model::<Replier>()
        .all(&app.db)
        .await?;
    let mut out: HashMap<Uuid, Stats> = HashMap::new();
    for row in counted {
        let stats = out.entry(row.root).or_default();
        stats.replies = u64::try_from(row.n).unwrap_or(0);
        stats.last_reply_at = row.last_at;
    }
    let mut by_root: HashMap<Uuid, Vec<(i64, Uuid)>> = HashMap::new();
    for row in repliers {
        by_root
            .entry(row.root)
            .or_default()
            .push((row.last, row.sender));
    }
    for (root, mut senders) in by_root {
        senders.sort_by_key(|&(last, _)| std::cmp::Reverse(last));
        out.entry(root).or_default().repliers = senders
            .into_iter()
            .take(REPLIERS_SHOWN)
            .map(|(_, sender)| sender)
            .collect();
    }
    Ok(out)
}

/// The caller's markers in the threads of `roots` they follow.
pub async fn follows(
    app: &AppState,
    user: Uuid,
    roots: &[Uuid],
) -> AppResult<Vec<thread_follow::Model>> {
    if roots.is_empty() {
        return Ok(Vec::new());
    }
    Ok(thread_follow::Entity::find()
        .filter(thread_follow::Column::UserId.eq(user))
        .filter(thread_follow::Column::RootId.is_in(roots.iter().copied()))
        .all(&app.db)
        .await?)
}

#[derive(FromQueryResult)]
struct Unread {
    root: Uuid,
    n: i64,
}

/// Unread replies from others after each marker, per thread (one statement).
pub async fn unread(
    app: &AppState,
    user: Uuid,
    markers: &[(Uuid, i64)],
) -> AppResult<HashMap<Uuid, u64>> {
    if markers.is_empty() {
        return Ok(HashMap::new());
    }
    let mut after = Condition::any();
    for (root, seq) in markers {
        after = after.add(
            Condition::all()
                .add(message::Column::ThreadRootId.eq(*root))
                .add(message::Column::Seq.gt(*seq)),
        );
    }
    let rows = message::Entity::find()
        .select_only()
        .column_as(message::Column::ThreadRootId, "root")
        .column_as(message::Column::Id.count(), "n")
        .filter(message::Column::DeletedAt.is_null())
        .filter(
            Condition::any()
                .add(message::Column::SenderId.is_null())
                .add(message::Column::SenderId.ne(user)),
        )
        .filter(after)
        .group_by(message::Column::ThreadRootId)
        .into_model::<Unread>()
        .all(&app.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.root, u64::try_from(r.n).unwrap_or(0)))
        .collect())
}

#[derive(FromQueryResult)]
struct Active {
    root: Uuid,
}

/// A chat's threads (roots with replies), the most recently replied first.
pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    first: u64,
) -> AppResult<Vec<message::Model>> {
    validate::page_size("first", first as i64, LIST_MAX)?;
    chat_access(app, viewer, chat_id, Need::Read).await?;
    let active = message::Entity::find()
        .select_only()
        .column_as(message::Column::ThreadRootId, "root")
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::ThreadRootId.is_not_null())
        .filter(message::Column::DeletedAt.is_null())
        .group_by(message::Column::ThreadRootId)
        .order_by_desc(message::Column::Seq.max())
        .limit(first)
        .into_model::<Active>()
        .all(&app.db)
        .await?;
    let ids: Vec<Uuid> = active.iter().map(|a| a.root).collect();
    let mut roots = message::Entity::find()
        .filter(message::Column::Id.is_in(ids.iter().copied()))
        .all(&app.db)
        .await?;
    roots.sort_by_key(|root| ids.iter().position(|id| *id == root.id));
    Ok(roots)
}

/// Follows a thread from now (what is there counts as read). Returns the root.
pub async fn follow(app: &AppState, viewer: &Viewer, root_id: Uuid) -> AppResult<message::Model> {
    let root = root_access(app, viewer, root_id, Need::Member).await?;
    let last = last_seq(app, &root).await?;
    thread_follow::Entity::insert(thread_follow::ActiveModel {
        root_id: Set(root.id),
        user_id: Set(viewer.user_id),
        chat_id: Set(root.chat_id),
        last_read_seq: Set(last),
        created_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([thread_follow::Column::RootId, thread_follow::Column::UserId])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(&app.db)
    .await?;
    Ok(root)
}

/// Stops following a thread; whether the caller followed it.
pub async fn unfollow(app: &AppState, viewer: &Viewer, root_id: Uuid) -> AppResult<bool> {
    let removed = thread_follow::Entity::delete_by_id((root_id, viewer.user_id))
        .exec(&app.db)
        .await?;
    Ok(removed.rows_affected > 0)
}

/// Marks a followed thread read up to its latest reply. Returns the root.
pub async fn mark_read(
    app: &AppState,
    viewer: &Viewer,
    root_id: Uuid,
) -> AppResult<message::Model> {
    let root = root_access(app, viewer, root_id, Need::Member).await?;
    let last = last_seq(app, &root).await?;
    thread_follow::Entity::update_many()
        .col_expr(thread_follow::Column::LastReadSeq, Expr::value(last))
        .filter(thread_follow::Column::RootId.eq(root.id))
        .filter(thread_follow::Column::UserId.eq(viewer.user_id))
        .filter(thread_follow::Column::LastReadSeq.lt(last))
        .exec(&app.db)
        .await?;
    Ok(root)
}

/// The `seq` of a thread's latest reply (the root's own when it has none).
async fn last_seq(app: &AppState, root: &message::Model) -> AppResult<i64> {
    let last: Option<Option<i64>> = message::Entity::find()
        .select_only()
        .column_as(message::Column::Seq.max(), "last")
        .filter(message::Column::ThreadRootId.eq(root.id))
        .into_tuple()
        .one(&app.db)
        .await?;
    Ok(last.flatten().unwrap_or(root.seq))
}
