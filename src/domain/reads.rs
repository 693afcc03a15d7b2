//! Read state as per-member markers (a sequence number per member and chat), not one row per
//! message per reader, so big rooms stay cheap. Markers only move forward.
use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, Condition, EntityTrait, FromQueryResult, JoinType, PaginatorTrait, QueryFilter,
    QuerySelect,
    sea_query::{Expr, ExprTrait, IntoCondition},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access, message_access},
    autocommit,
};
use crate::{
    entity::{chat_member, message, message_mention},
    error::AppResult,
    events::{Event, Topic},
    state::AppState,
};

/// A message's delivery state as its sender sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageStatus {
    /// Stored; no other member has fetched it yet.
    Sent,
    /// Another member has fetched it.
    Delivered,
    /// Another member has read it.
    Read,
}

/// Moves the caller's read marker up to a message; returns how many messages became read.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, message = %message_id))]
pub async fn mark_read(app: &AppState, viewer: &Viewer, message_id: Uuid) -> AppResult<u64> {
    let (message, _) = message_access(app, viewer, message_id, Need::Member).await?;
    advance(app, viewer, message.chat_id, message.seq).await
}

/// Marks everything in a chat read; returns how many messages became read.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat = %chat_id))]
pub async fn mark_chat_read(app: &AppState, viewer: &Viewer, chat_id: Uuid) -> AppResult<u64> {
    let access = chat_access(app, viewer, chat_id, Need::Member).await?;
    advance(app, viewer, chat_id, access.chat.last_seq).await
}

async fn advance(app: &AppState, viewer: &Viewer, chat_id: Uuid, seq: i64) -> AppResult<u64> {
    let Some(member) = chat_member::Entity::find_by_id((chat_id, viewer.user_id))
        .one(&app.db)
        .await?
    else {
        return Ok(0);
    };
    if seq <= member.last_read_seq {
        return Ok(0);
    }
    let moved = autocommit(app, |db, outbox| {
        Box::pin(async move {
            let moved = chat_member::Entity::update_many()
                .col_expr(chat_member::Column::LastReadSeq, Expr::value(seq))
                .filter(chat_member::Column::ChatId.eq(chat_id))
                .filter(chat_member::Column::UserId.eq(viewer.user_id))
                .filter(chat_member::Column::LastReadSeq.eq(member.last_read_seq))
                .exec(db)
                .await?;
            if moved.rows_affected == 0 {
                return Ok(false);
            }
            mark_delivered(app, chat_id, viewer.user_id, seq).await?;
            let event = Event::ReadStatusChanged {
                chat_id,
                user_id: viewer.user_id,
                last_read_seq: seq,
            };
            outbox.record(Topic::Chat(chat_id), event);
            Ok(true)
        })
    })
    .await?;
    if !moved {
        return Ok(0); // a concurrent request moved it first and counted these
    }
    Ok(from_others(viewer.user_id)
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::Seq.gt(member.last_read_seq))
        .filter(message::Column::Seq.lte(seq))
        .count(&app.db)
        .await?)
}

/// Messages that count as unread for `user_id`: not deleted, not their own.
fn from_others(user_id: Uuid) -> sea_orm::Select<message::Entity> {
    message::Entity::find()
        .filter(message::Column::DeletedAt.is_null())
        .filter(
            Condition::any()
                .add(message::Column::SenderId.is_null())
                .add(message::Column::SenderId.ne(user_id)),
        )
}

/// Records that a member has fetched messages up to `seq`.
pub async fn mark_delivered(
    app: &AppState,
    chat_id: Uuid,
    user_id: Uuid,
    seq: i64,
) -> AppResult<()> {
    chat_member::Entity::update_many()
        .col_expr(chat_member::Column::LastDeliveredSeq, Expr::value(seq))
        .filter(chat_member::Column::ChatId.eq(chat_id))
        .filter(chat_member::Column::UserId.eq(user_id))
        .filter(chat_member::Column::LastDeliveredSeq.lt(seq))
        .exec(&app.db)
        .await?;
    Ok(())
}

#[derive(FromQueryResult)]
struct ChatCount {
    chat_id: Uuid,
    n: i64,
    mentions: i64,
}

/// A member's unread messages in a chat, and how many of them mention the member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnreadCounts {
    pub messages: u64,
    pub mentions: u64,
}

/// Unread messages per chat for one user, given each chat's read marker: messages from others,
/// not deleted, after the marker, and how many of those mention the user. One grouped query for
/// any number of chats.
pub async fn unread_counts(
    app: &AppState,
    user_id: Uuid,
    markers: &[(Uuid, i64)],
) -> AppResult<HashMap<Uuid, UnreadCounts>> {
    if markers.is_empty() {
        return Ok(HashMap::new());
    }
    let mut after_marker = Condition::any();
    for (chat_id, seq) in markers {
        after_marker = after_marker.add(
            Condition::all()
                .add(message::Column::ChatId.eq(*chat_id))
                .add(message::Column::Seq.gt(*seq)),
        );
    }
    let mention_of_me = message::Entity::belongs_to(message_mention::Entity)
        .from(message::Column::Id)
        .to(message_mention::Column::MessageId)
        .on_condition(move |_message, mention| {
            Expr::col((mention, message_mention::Column::UserId))
                .eq(user_id)
                .into_condition()
        });
    // Replies in threads are counted per thread (`threads::unread`), not in the chat.
    let rows = from_others(user_id)
        .filter(message::Column::ThreadRootId.is_null())
        .select_only()
        .column(message::Column::ChatId)
        .column_as(message::Column::Id.count(), "n")
        .column_as(
            Expr::col((message_mention::Entity, message_mention::Column::MessageId)).count(),
            "mentions",
        )
        .join(JoinType::LeftJoin, mention_of_me.into())
        .filter(after_marker)
        .group_by(message::Column::ChatId)
        .into_model::<ChatCount>()
        .all(&app.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let counts = UnreadCounts {
                messages: u64::try_from(r.n).unwrap_or(0),
                mentions: u64::try_from(r.mentions).unwrap_or(0),
            };
            (r.chat_id, counts)
        })
        .collect())
}

/// The sender's view of a message, from the chat's members' markers.
pub fn status(message: &message::Model, members: &[chat_member::Model]) -> MessageStatus {
    let others = || {
        members
            .iter()
            .filter(|m| Some(m.user_id) != message.sender_id)
    };
    if others().any(|m| m.last_read_seq >= message.seq) {
        MessageStatus::Read
    } else if others().any(|m| m.last_delivered_seq >= message.seq) {
        MessageStatus::Delivered
    } else {
        MessageStatus::Sent
    }
}

/// Members other than the sender whose read marker has reached the message.
pub fn read_by(message: &message::Model, members: &[chat_member::Model]) -> Vec<Uuid> {
    members
        .iter()
        .filter(|m| Some(m.user_id) != message.sender_id && m.last_read_seq >= message.seq)
        .map(|m| m.user_id)
        .collect()
}
