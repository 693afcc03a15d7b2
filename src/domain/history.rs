//! Reading history: connection paging over a chat's sequence numbers (forward, backward, or by
//! offset from the newest), counts, and text search inside the caller's chats.
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, IdenStatic, Iterable, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    sea_query::{Alias, Expr, ExprTrait, Func, LikeExpr, Order, Query},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access, check, membership_of},
    paging::fetch_page,
    reads, validate,
};
use crate::{
    entity::{chat, chat_member, message, user},
    error::{AppError, AppResult},
    state::AppState,
};

/// Largest page of history.
pub const PAGE_MAX: u64 = 100;
/// Page size when none is given.
pub const PAGE_DEFAULT: u64 = 50;
/// Largest page of search results.
pub const SEARCH_PAGE_MAX: u64 = 50;

/// How a page of history is chosen.
#[derive(Clone, Copy, Debug)]
pub enum Paging {
    /// `first` messages after `after` (oldest first).
    Forward { after: Option<i64>, first: u64 },
    /// `last` messages before `before` (still returned oldest first).
    Backward { before: Option<i64>, last: u64 },
    /// `limit` messages after skipping `skip` from the newest.
    Offset { skip: u64, limit: u64 },
}

impl Paging {
    /// Validates the connection arguments; with none, the newest page.
    pub fn from_args(
        first: Option<i64>,
        after: Option<i64>,
        last: Option<i64>,
        before: Option<i64>,
        limit: Option<i64>,
        skip: Option<i64>,
    ) -> AppResult<Self> {
        let size = |field: &str, n: i64| validate::page_size(field, n, PAGE_MAX);
        if first.is_some() && last.is_some() {
            return Err(AppError::bad_input(
                "last",
                "pass either first or last, not both",
            ));
        }
        if (limit.is_some() || skip.is_some()) && (first.is_some() || last.is_some()) {
            return Err(AppError::bad_input(
                "limit",
                "offset paging cannot be mixed with first/last",
            ));
        }
        if let Some(skip) = skip {
            let skip = u64::try_from(skip)
                .map_err(|_| AppError::bad_input("skip", "skip must not be negative"))?;
            let limit = limit.map_or(Ok(PAGE_DEFAULT), |l| size("limit", l))?;
            return Ok(Self::Offset { skip, limit });
        }
        if let Some(limit) = limit {
            return Ok(Self::Offset {
                skip: 0,
                limit: size("limit", limit)?,
            });
        }
        match (first, last) {
            (Some(first), _) => Ok(Self::Forward {
                after,
                first: size("first", first)?,
            }),
            (None, Some(last)) => Ok(Self::Backward {
                before,
                last: size("last", last)?,
            }),
            (None, None) if after.is_some() => Ok(Self::Forward {
                after,
                first: PAGE_DEFAULT,
            }),
            (None, None) => Ok(Self::Backward {
                before,
                last: PAGE_DEFAULT,
            }),
        }
    }
}

/// A page of history, oldest first.
pub struct MessagePage {
    pub messages: Vec<message::Model>,
    pub has_previous: bool,
    pub has_next: bool,
    /// Whether more exist in the direction the client is paging.
    pub has_more: bool,
    /// The senders of `messages` (when asked for), read by the same statement.
    pub senders: Vec<user::Model>,
}

/// Aliases of the one statement that reads a page: the chat (A_), the caller's membership (B_),
/// the page's messages (C_) and their senders (D_).
const PAGE: &str = "page";
const MESSAGE: &str = "C_";
const SENDER: &str = "D_";

/// A page of a chat's history. Reading as a member also counts as delivery.
///
/// One statement reads the chat, the caller's membership, the page (one row beyond it, to know
/// whether more follow) and, with `senders`, who sent each message: the chat left-joined to the
/// page as a derived table, so even an empty page brings the chat back for the access check.
/// A second statement (the delivery marker) runs only when the page shows the member newer
/// messages than they had fetched before.
pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    paging: Paging,
    senders: bool,
) -> AppResult<MessagePage> {
    // The main timeline: replies in threads are read with their thread (`threads`).
    let base = message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::ThreadRootId.is_null());
    let (page, size, newest_first) = match paging {
        Paging::Forward { after, first } => {
            let mut query = base;
            if let Some(after) = after {
                query = query.filter(message::Column::Seq.gt(after));
            }
            (query.order_by_asc(message::Column::Seq), first, false)
        }
        Paging::Backward { before, last } => {
            let mut query = base;
            if let Some(before) = before {
                query = query.filter(message::Column::Seq.lt(before));
            }
            (query.order_by_desc(message::Column::Seq), last, true)
        }
        Paging::Offset { skip, limit } => (
            base.order_by_desc(message::Column::Seq).offset(skip),
            limit,
            true,
        ),
    };
    let page = page.limit(size.saturating_add(1)).into_query();

    let mut query = chat::Entity::find_by_id(chat_id)
        .select_also(chat_member::Entity)
        .join(JoinType::LeftJoin, membership_of(viewer.user_id))
        .into_query();
    query.join_subquery(
        JoinType::LeftJoin,
        page,
        Alias::new(PAGE),
        Expr::col((Alias::new(PAGE), message::Column::ChatId))
            .equals((chat::Entity, chat::Column::Id)),
    );
    for col in message::Column::iter() {
        query.expr_as(
            Expr::col((Alias::new(PAGE), col)),
            Alias::new(format!("{MESSAGE}{}", col.as_str())),
        );
    }
    if senders {
        query.left_join(
            user::Entity,
            Expr::col((user::Entity, user::Column::Id))
                .equals((Alias::new(PAGE), message::Column::SenderId)),
        );
        for col in user::Column::iter() {
            query.expr_as(
                Expr::col((user::Entity, col)),
                Alias::new(format!("{SENDER}{}", col.as_str())),
            );
        }
    }
    let order = if newest_first {
        Order::Desc
    } else {
        Order::Asc
    };
    query.order_by((Alias::new(PAGE), message::Column::Seq), order);
    let rows = app.db.query_all(&query).await?;

    let first = rows
        .first()
        .ok_or_else(|| AppError::NotFound("chat not found".into()))?;
    let chat = chat::Model::from_query_result(first, "A_")?;
    let membership = chat_member::Model::from_query_result_optional(first, "B_")?;
    check(viewer, &chat, membership.as_ref(), Need::Read)?;
    let mut messages = Vec::with_capacity(rows.len());
    let mut users: Vec<user::Model> = Vec::new();
    for row in &rows {
        let Some(message) = message::Model::from_query_result_optional(row, MESSAGE)? else {
            continue;
        };
        if senders
            && let Some(user) = user::Model::from_query_result_optional(row, SENDER)?
            && !users.iter().any(|u| u.id == user.id)
        {
            users.push(user);
        }
        messages.push(message);
    }
    let more = messages.len() as u64 > size;
    messages.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    if newest_first {
        messages.reverse();
    }
    let page = match paging {
        Paging::Forward { after, .. } => MessagePage {
            messages,
            has_previous: after.is_some_and(|a| a > 0),
            has_next: more,
            has_more: more,
            senders: users,
        },
        Paging::Backward { before, .. } => MessagePage {
            messages,
            has_previous: more,
            has_next: before.is_some_and(|b| b <= chat.last_seq),
            has_more: more,
            senders: users,
        },
        Paging::Offset { skip, .. } => MessagePage {
            messages,
            has_previous: more,
            // Newer messages were skipped if the chat has any (seq is gap-free from 1).
            has_next: skip > 0 && chat.last_seq > 0,
            has_more: more,
            senders: users,
        },
    };
    if let (Some(membership), Some(newest)) = (&membership, page.messages.last())
        && newest.seq > membership.last_delivered_seq
    {
        reads::mark_delivered(app, chat_id, viewer.user_id, newest.seq).await?;
    }
    Ok(page)
}

/// How many messages a chat's main timeline holds (soft-deleted ones included: they stay in
/// history; replies in threads are counted with their thread).
pub async fn count(app: &AppState, chat_id: Uuid) -> AppResult<u64> {
    Ok(message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::ThreadRootId.is_null())
        .count(&app.db)
        .await?)
}

/// Messages containing `text` (any case, literally) in the chats the caller is a member of,
/// newest first; `after` is the id of the last result of the previous page.
pub async fn search(
    app: &AppState,
    viewer: &Viewer,
    text: &str,
    chat_id: Option<Uuid>,
    first: u64,
    after: Option<Uuid>,
) -> AppResult<(Vec<message::Model>, bool)> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 200 {
        return Err(AppError::bad_input(
            "query",
            "query must be 1–200 characters long",
        ));
    }
    validate::page_size("first", first as i64, SEARCH_PAGE_MAX)?;
    let mut query = search_query(viewer, text);
    if let Some(chat_id) = chat_id {
        chat_access(app, viewer, chat_id, Need::Member).await?;
        query = query.filter(message::Column::ChatId.eq(chat_id));
    }
    if let Some(after) = after {
        query = query.filter(message::Column::Id.lt(after));
    }
    fetch_page(query.order_by_desc(message::Column::Id), first, &app.db).await
}

/// How many messages `search` matches in all.
pub async fn search_count(
    app: &AppState,
    viewer: &Viewer,
    text: &str,
    chat_id: Option<Uuid>,
) -> AppResult<u64> {
    let mut query = search_query(viewer, text.trim());
    if let Some(chat_id) = chat_id {
        query = query.filter(message::Column::ChatId.eq(chat_id));
    }
    Ok(query.count(&app.db).await?)
}

fn search_query(viewer: &Viewer, text: &str) -> sea_orm::Select<message::Entity> {
    let mine = Query::select()
        .column(chat_member::Column::ChatId)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::UserId).eq(viewer.user_id))
        .to_owned();
    let pattern = validate::like_pattern_contains(&text.to_lowercase());
    message::Entity::find()
        .filter(message::Column::ChatId.in_subquery(mine))
        .filter(message::Column::DeletedAt.is_null())
        .filter(
            Expr::expr(Func::lower(Expr::col(message::Column::Content)))
                .like(LikeExpr::new(pattern).escape('\\')),
        )
}
