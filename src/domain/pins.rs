//! Pinned messages: shared by a chat's members. In groups and rooms admins pin and unpin; in a
//! direct chat either person does. A pinned message that is deleted is no longer listed.
use chrono::Utc;
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{ChatAccess, Need, message_access},
    in_transaction,
};
use crate::{
    entity::{chat::ChatKind, message, pinned_message},
    error::{AppError, AppResult},
    events::{Event, Topic},
    state::AppState,
};

/// Most messages pinned in one chat.
pub const PINS_MAX: u64 = 50;

fn may_pin(access: &ChatAccess) -> AppResult<()> {
    let admin = access.role().is_some_and(|r| r.is_admin());
    if access.chat.kind == ChatKind::Direct || admin {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "only admins pin and unpin messages here".into(),
        ))
    }
}

/// Pins a message in its chat (pinning it again changes nothing). Returns the message.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, message = %message_id))]
pub async fn pin(app: &AppState, viewer: &Viewer, message_id: Uuid) -> AppResult<message::Model> {
    let (message, access) = message_access(app, viewer, message_id, Need::Member).await?;
    may_pin(&access)?;
    if message.deleted_at.is_some() {
        return Err(AppError::bad_input(
            "messageId",
            "a deleted message cannot be pinned",
        ));
    }
    let by = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let pinned = pinned_message::Entity::find()
                .filter(pinned_message::Column::ChatId.eq(message.chat_id))
                .count(txn)
                .await?;
            if pinned >= PINS_MAX {
                return Err(AppError::bad_input(
                    "messageId",
                    format!("a chat has at most {PINS_MAX} pinned messages: unpin one first"),
                ));
            }
            let inserted = pinned_message::Entity::insert(pinned_message::ActiveModel {
                chat_id: Set(message.chat_id),
                message_id: Set(message.id),
                pinned_by: Set(Some(by)),
                pinned_at: Set(Utc::now()),
            })
            .on_conflict(
                OnConflict::columns([
                    pinned_message::Column::ChatId,
                    pinned_message::Column::MessageId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            if inserted == 1 {
                let event = Event::MessagePinned {
                    message: message.clone(),
                    by,
                };
                outbox.record(Topic::Chat(message.chat_id), event);
            }
            Ok(message)
        })
    })
    .await
}

/// Unpins a message (unpinning one that is not pinned changes nothing). Returns the message.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, message = %message_id))]
pub async fn unpin(app: &AppState, viewer: &Viewer, message_id: Uuid) -> AppResult<message::Model> {
    let (message, access) = message_access(app, viewer, message_id, Need::Member).await?;
    may_pin(&access)?;
    let by = viewer.user_id;
    super::autocommit(app, |db, outbox| {
        Box::pin(async move {
            let removed = pinned_message::Entity::delete_by_id((message.chat_id, message.id))
                .exec(db)
                .await?;
            if removed.rows_affected == 1 {
                let event = Event::MessageUnpinned {
                    chat_id: message.chat_id,
                    message_id: message.id,
                    by,
                };
                outbox.record(Topic::Chat(message.chat_id), event);
            }
            Ok(message)
        })
    })
    .await
}

/// The messages pinned in each of `chats`, most recently pinned first, deleted ones left out
/// (one statement). The caller checks that the chats may be read.
pub async fn pinned_in(
    app: &AppState,
    chats: &[Uuid],
) -> AppResult<Vec<(pinned_message::Model, message::Model)>> {
    if chats.is_empty() {
        return Ok(Vec::new());
    }
    let rows = pinned_message::Entity::find()
        .select_also(message::Entity)
        .join(sea_orm::JoinType::InnerJoin, pinned_to_message())
        .filter(pinned_message::Column::ChatId.is_in(chats.iter().copied()))
        .filter(message::Column::DeletedAt.is_null())
        .order_by_desc(pinned_message::Column::PinnedAt)
        .all(&app.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(pin, message)| Some((pin, message?)))
        .collect())
}

/// Which of `messages` are pinned (and not deleted).
pub async fn which_pinned(app: &AppState, messages: &[Uuid]) -> AppResult<Vec<Uuid>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    Ok(pinned_message::Entity::find()
        .select_only()
        .column(pinned_message::Column::MessageId)
        .filter(pinned_message::Column::MessageId.is_in(messages.iter().copied()))
        .into_tuple()
        .all(&app.db)
        .await?)
}

fn pinned_to_message() -> sea_orm::RelationDef {
    pinned_message::Entity::belongs_to(message::Entity)
        .from(pinned_message::Column::MessageId)
        .to(message::Column::Id)
        .into()
}
