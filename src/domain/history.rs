//! Reading history: connection paging over a chat's sequence numbers (forward, backward, or by
//! offset from the newest), counts, and text search inside the caller's chats.
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
    paging::fetch_page,
    reads, validate,
};
use crate::{
    entity::{chat_member, message},
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
}

/// A page of a chat's history. Reading as a member also counts as delivery.
pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    paging: Paging,
) -> AppResult<MessagePage> {
    let access = chat_access(app, viewer, chat_id, Need::Read).await?;
    let base = message::Entity::find().filter(message::Column::ChatId.eq(chat_id));
    let page = match paging {
        Paging::Forward { after, first } => {
            let mut query = base;
            if let Some(after) = after {
                query = query.filter(message::Column::Seq.gt(after));
            }
            let query = query.order_by_asc(message::Column::Seq);
            let (messages, has_next) = fetch_page(query, first, &app.db).await?;
            let has_previous = after.is_some_and(|a| a > 0);
            MessagePage {
                messages,
                has_previous,
                has_next,
                has_more: has_next,
            }
        }
        Paging::Backward { before, last } => {
            let mut query = base;
            if let Some(before) = before {
                query = query.filter(message::Column::Seq.lt(before));
            }
            let query = query.order_by_desc(message::Column::Seq);
            let (mut messages, has_previous) = fetch_page(query, last, &app.db).await?;
            messages.reverse();
            let has_next = before.is_some_and(|b| b <= access.chat.last_seq);
            MessagePage {
                messages,
                has_previous,
                has_next,
                has_more: has_previous,
            }
        }
        Paging::Offset { skip, limit } => {
            let query = base.order_by_desc(message::Column::Seq).offset(skip);
            let (mut messages, has_previous) = fetch_page(query, limit, &app.db).await?;
            messages.reverse();
            MessagePage {
                messages,
                has_previous,
                has_next: skip > 0,
                has_more: has_previous,
            }
        }
    };
    if let (Some(membership), Some(newest)) = (&access.membership, page.messages.last())
        && newest.seq > membership.last_delivered_seq
    {
        reads::mark_delivered(app, chat_id, viewer.user_id, newest.seq).await?;
    }
    Ok(page)
}

/// How many messages a chat holds (soft-deleted ones included: they stay in history).
pub async fn count(app: &AppState, chat_id: Uuid) -> AppResult<u64> {
    Ok(message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
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
