//! Saved messages: each user keeps messages for themself, across chats. Saving needs the right
//! to read the message; the list shows only what the user may still read (a saved message of a
//! chat they left drops out, and comes back if they return) and never a deleted one.
use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, JoinType, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, RelationTrait, Set,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, message_access},
    validate,
};
use crate::{
    entity::{
        chat::{self, ChatKind},
        chat_member, message, saved_message,
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// Largest page of saved messages.
pub const PAGE_MAX: u64 = 100;
/// Most messages one user keeps saved.
pub const SAVED_MAX: u64 = 1_000;

/// Saves a message for the caller (saving it again changes nothing). Returns the message.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, message = %message_id))]
pub async fn save(app: &AppState, viewer: &Viewer, message_id: Uuid) -> AppResult<message::Model> {
    let (message, _) = message_access(app, viewer, message_id, Need::Read).await?;
    if message.deleted_at.is_some() {
        return Err(AppError::bad_input(
            "messageId",
            "a deleted message cannot be saved",
        ));
    }
    let kept = saved_message::Entity::find()
        .filter(saved_message::Column::UserId.eq(viewer.user_id))
        .count(&app.db)
        .await?;
    if kept >= SAVED_MAX {
        return Err(AppError::bad_input(
            "messageId",
            format!("at most {SAVED_MAX} saved messages: unsave one first"),
        ));
    }
    saved_message::Entity::insert(saved_message::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(viewer.user_id),
        message_id: Set(message.id),
        saved_at: Set(Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([
            saved_message::Column::UserId,
            saved_message::Column::MessageId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&app.db)
    .await?;
    Ok(message)
}

/// Forgets a saved message; whether it was saved.
pub async fn unsave(app: &AppState, viewer: &Viewer, message_id: Uuid) -> AppResult<bool> {
    let removed = saved_message::Entity::delete_many()
        .filter(saved_message::Column::UserId.eq(viewer.user_id))
        .filter(saved_message::Column::MessageId.eq(message_id))
        .exec(&app.db)
        .await?;
    Ok(removed.rows_affected > 0)
}

/// A page of saved messages: each with its saved row (the cursor is the row's id).
pub struct SavedPage {
    pub items: Vec<(saved_message::Model, message::Model)>,
    pub has_next: bool,
}

/// The caller's saved messages they may still read, most recently saved first, after the row
/// `after`.
pub async fn page(
    app: &AppState,
    viewer: &Viewer,
    first: u64,
    after: Option<Uuid>,
) -> AppResult<SavedPage> {
    validate::page_size("first", first as i64, PAGE_MAX)?;
    let mut query = readable(viewer);
    if let Some(after) = after {
        query = query.filter(saved_message::Column::Id.lt(after));
    }
    let rows = query
        .select_also(message::Entity)
        .order_by_desc(saved_message::Column::Id)
        .limit(first + 1)
        .all(&app.db)
        .await?;
    let mut items: Vec<_> = rows
        .into_iter()
        .filter_map(|(saved, message)| Some((saved, message?)))
        .collect();
    let has_next = items.len() as u64 > first;
    items.truncate(first as usize);
    Ok(SavedPage { items, has_next })
}

/// How many saved messages `page` lists in all.
pub async fn count(app: &AppState, viewer: &Viewer) -> AppResult<u64> {
    Ok(readable(viewer).count(&app.db).await?)
}

/// Which of `messages` the user saved.
pub async fn which_saved(app: &AppState, user: Uuid, messages: &[Uuid]) -> AppResult<Vec<Uuid>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    Ok(saved_message::Entity::find()
        .select_only()
        .column(saved_message::Column::MessageId)
        .filter(saved_message::Column::UserId.eq(user))
        .filter(saved_message::Column::MessageId.is_in(messages.iter().copied()))
        .into_tuple()
        .all(&app.db)
        .await?)
}

/// The caller's saved rows whose message is not deleted and sits in a chat they may read now:
/// one they are a member of, a public room, or any chat for staff (`access::can_see`).
fn readable(viewer: &Viewer) -> sea_orm::Select<saved_message::Entity> {
    let query = saved_message::Entity::find()
        .join(JoinType::InnerJoin, saved_message::Relation::Message.def())
        .filter(saved_message::Column::UserId.eq(viewer.user_id))
        .filter(message::Column::DeletedAt.is_null());
    if viewer.is_staff {
        return query;
    }
    let mine = Query::select()
        .column(chat_member::Column::ChatId)
        .from(chat_member::Entity)
        .and_where(Expr::col(chat_member::Column::UserId).eq(viewer.user_id))
        .to_owned();
    let public_rooms = Query::select()
        .column(chat::Column::Id)
        .from(chat::Entity)
        .and_where(Expr::col(chat::Column::Kind).eq(sea_orm::ActiveEnum::to_value(&ChatKind::Room)))
        .and_where(Expr::col(chat::Column::IsPrivate).eq(false))
        .to_owned();
    query.filter(
        Condition::any()
            .add(message::Column::ChatId.in_subquery(mine))
            .add(message::Column::ChatId.in_subquery(public_rooms)),
    )
}
