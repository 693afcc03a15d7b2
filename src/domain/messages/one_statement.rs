//! A message written in one statement on PostgreSQL. Sending is three writes (take the chat's
//! next `seq` and move its activity, and its last message unless this is a reply in a thread;
//! insert the message; move the sender's read and delivery markers) that must stand or fall
//! together; as three statements in a transaction they cost five round trips and hold the chat
//! row's lock across all of them. Data-modifying common table expressions make them one
//! statement: atomic by itself (no BEGIN/COMMIT), the lock held for one statement only, the same
//! guarantees (gap-free `seq` in commit order, `createdAt` never behind its predecessor's). SQLite
//! has no data-modifying CTEs; it keeps the three statements (`super::insert`).
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement, Value};
use uuid::Uuid;

use super::Draft;
use crate::{
    entity::message,
    error::{AppError, AppResult},
};

const SQL: &str = r#"
WITH bumped AS (
    UPDATE chats
       SET last_seq = last_seq + 1,
           last_message_id = CASE WHEN $10::uuid IS NULL THEN $1 ELSE last_message_id END,
           last_activity_at = GREATEST(last_activity_at, $2)
     WHERE id = $3
    RETURNING last_seq, last_activity_at
), inserted AS (
    INSERT INTO messages (id, chat_id, seq, sender_id, kind, content, reply_to_id,
                          forwarded_from_message_id, forwarded_from_sender_id, created_at,
                          edited_at, deleted_at, thread_root_id)
    SELECT $1, $3, bumped.last_seq, $4, $5, $6, $7, $8, $9, bumped.last_activity_at, NULL, NULL,
           $10
      FROM bumped
    RETURNING *
), marked AS (
    UPDATE chat_members
       SET last_read_seq = inserted.seq, last_delivered_seq = inserted.seq
      FROM inserted
     WHERE chat_members.chat_id = $3 AND chat_members.user_id = $4 AND $10::uuid IS NULL
)
SELECT * FROM inserted
"#;

/// Writes `draft` as the chat's next message; NOT_FOUND when the chat is gone.
pub(super) async fn insert<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    now: DateTime<Utc>,
    draft: &Draft,
) -> AppResult<message::Model> {
    let kind: String = sea_orm::ActiveEnum::to_value(&draft.kind);
    let values: Vec<Value> = vec![
        id.into(),
        now.into(),
        draft.chat_id.into(),
        draft.sender_id.into(),
        kind.into(),
        draft.content.clone().into(),
        draft.reply_to_id.into(),
        draft.forwarded_from_message_id.into(),
        draft.forwarded_from_sender_id.into(),
        draft.thread_root_id.into(),
    ];
    message::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            values,
        ))
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("chat not found".into()))
}
