//! Messages: sending (sequence numbers handed out inside the sending transaction, so a chat's
//! order is its commit order), editing, soft deletion, forwarding, history paging and search.
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access, message_access},
    chats, in_transaction, reads, validate,
};
use crate::{
    app::AppState,
    entity::{
        chat, chat_member,
        file::{self, Purpose},
        message::{self, MessageKind},
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
};

/// Largest page of history.
pub const PAGE_MAX: u64 = 100;
/// Page size when none is given.
pub const PAGE_DEFAULT: u64 = 50;
/// Most chats one forward may target.
pub const FORWARD_TARGETS_MAX: usize = 20;
/// Largest page of search results.
pub const SEARCH_PAGE_MAX: u64 = 50;

/// Input of `sendMessage`.
pub struct Outgoing {
    pub chat_id: Option<Uuid>,
    pub recipient_id: Option<Uuid>,
    pub content: String,
    pub reply_to_id: Option<Uuid>,
    /// Files uploaded by the sender and not attached anywhere yet.
    pub attachment_ids: Vec<Uuid>,
}

/// Most attachments on one message.
pub const ATTACHMENTS_MAX: usize = 10;

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
        let size = |field: &str, n: i64| -> AppResult<u64> {
            u64::try_from(n)
                .ok()
                .filter(|n| (1..=PAGE_MAX).contains(n))
                .ok_or_else(|| {
                    AppError::bad_input(field, format!("{field} must be between 1 and {PAGE_MAX}"))
                })
        };
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

/// Sends a text message to a chat, or to a user (opening the direct chat on first use).
pub async fn send(app: &AppState, viewer: &Viewer, input: Outgoing) -> AppResult<message::Model> {
    let chat_id = match (input.chat_id, input.recipient_id) {
        (Some(chat_id), None) => chat_id,
        (None, Some(recipient)) => {
            if recipient == viewer.user_id {
                return Err(AppError::bad_input(
                    "recipientId",
                    "you cannot message yourself",
                ));
            }
            super::users::get(app, viewer, recipient).await?;
            chats::direct_chat_between(app, viewer.user_id, recipient)
                .await?
                .id
        }
        _ => {
            return Err(AppError::bad_input(
                "chatId",
                "give exactly one of chatId and recipientId",
            ));
        }
    };
    let attachments = pending_attachments(app, viewer, &input.attachment_ids).await?;
    let content = if attachments.is_empty() || !input.content.trim().is_empty() {
        Some(checked_content(app, &input.content)?)
    } else {
        None
    };
    chat_access(app, viewer, chat_id, Need::Post).await?;
    if let Some(reply_to) = input.reply_to_id {
        let target = message::Entity::find_by_id(reply_to).one(&app.db).await?;
        if target.is_none_or(|t| t.chat_id != chat_id) {
            return Err(AppError::bad_input(
                "replyToId",
                "replyToId must be a message of the same chat",
            ));
        }
    }
    let draft = Draft {
        chat_id,
        sender_id: Some(viewer.user_id),
        kind: attachments
            .first()
            .map_or(MessageKind::Text, |f| kind_of(&f.content_type)),
        content,
        reply_to_id: input.reply_to_id,
        forwarded_from_message_id: None,
        forwarded_from_sender_id: None,
    };
    let file_ids: Vec<Uuid> = attachments.iter().map(|f| f.id).collect();
    let message = in_transaction(app, |txn| {
        Box::pin(async move {
            let message = insert(txn, draft).await?;
            if !file_ids.is_empty() {
                file::Entity::update_many()
                    .col_expr(file::Column::MessageId, Expr::value(message.id))
                    .col_expr(file::Column::ChatId, Expr::value(message.chat_id))
                    .filter(file::Column::Id.is_in(file_ids))
                    .exec(txn)
                    .await?;
            }
            Ok(message)
        })
    })
    .await?;
    let event = Event::MessageCreated {
        message: message.clone(),
    };
    app.bus.publish(Topic::Chat(message.chat_id), event).await;
    Ok(message)
}

/// Changes the text of one's own message.
pub async fn edit(
    app: &AppState,
    viewer: &Viewer,
    id: Uuid,
    content: &str,
) -> AppResult<message::Model> {
    let (message, _) = message_access(app, viewer, id, Need::Member).await?;
    if message.sender_id != Some(viewer.user_id) {
        return Err(AppError::Forbidden(
            "only the sender may edit a message".into(),
        ));
    }
    if message.deleted_at.is_some() {
        return Err(AppError::bad_input(
            "id",
            "a deleted message cannot be edited",
        ));
    }
    let content = checked_content(app, content)?;
    let mut model: message::ActiveModel = message.into();
    model.content = Set(Some(content));
    model.edited_at = Set(Some(Utc::now()));
    let message = model.update(&app.db).await?;
    let event = Event::MessageEdited {
        message: message.clone(),
    };
    app.bus.publish(Topic::Chat(message.chat_id), event).await;
    Ok(message)
}

/// Soft-deletes a message: the sender, or an admin of the chat. Its text is erased.
pub async fn delete(app: &AppState, viewer: &Viewer, id: Uuid) -> AppResult<message::Model> {
    let (message, access) = message_access(app, viewer, id, Need::Read).await?;
    let is_sender = message.sender_id == Some(viewer.user_id) && access.membership.is_some();
    let is_admin = access.role().is_some_and(|r| r.is_admin());
    if !is_sender && !is_admin {
        return Err(AppError::Forbidden(
            "only the sender or a chat admin may delete a message".into(),
        ));
    }
    if message.deleted_at.is_some() {
        return Ok(message);
    }
    let mut model: message::ActiveModel = message.into();
    model.content = Set(None);
    model.deleted_at = Set(Some(Utc::now()));
    let message = model.update(&app.db).await?;
    let event = Event::MessageDeleted {
        chat_id: message.chat_id,
        message_id: message.id,
    };
    app.bus.publish(Topic::Chat(message.chat_id), event).await;
    Ok(message)
}

/// One message the caller may read.
pub async fn get(app: &AppState, viewer: &Viewer, id: Uuid) -> AppResult<message::Model> {
    Ok(message_access(app, viewer, id, Need::Read).await?.0)
}

/// Copies a message into other chats; the copies remember the original sender. Every target is
/// checked before anything is written, and all copies are written together.
pub async fn forward(
    app: &AppState,
    viewer: &Viewer,
    id: Uuid,
    targets: &[Uuid],
) -> AppResult<u64> {
    let (source, _) = message_access(app, viewer, id, Need::Member).await?;
    if source.deleted_at.is_some() {
        return Err(AppError::bad_input(
            "messageId",
            "a deleted message cannot be forwarded",
        ));
    }
    let mut unique: Vec<Uuid> = Vec::new();
    for target in targets {
        if !unique.contains(target) {
            unique.push(*target);
        }
    }
    if unique.is_empty() || unique.len() > FORWARD_TARGETS_MAX {
        return Err(AppError::bad_input(
            "targetChatIds",
            format!("give 1 to {FORWARD_TARGETS_MAX} target chats"),
        ));
    }
    for target in &unique {
        chat_access(app, viewer, *target, Need::Post).await?;
    }
    let drafts: Vec<Draft> = unique
        .iter()
        .map(|chat_id| Draft {
            chat_id: *chat_id,
            sender_id: Some(viewer.user_id),
            kind: source.kind,
            content: source.content.clone(),
            reply_to_id: None,
            forwarded_from_message_id: Some(source.forwarded_from_message_id.unwrap_or(source.id)),
            forwarded_from_sender_id: source.forwarded_from_sender_id.or(source.sender_id),
        })
        .collect();
    let copies = in_transaction(app, |txn| {
        Box::pin(async move {
            let mut copies = Vec::new();
            for draft in drafts {
                copies.push(insert(txn, draft).await?);
            }
            Ok(copies)
        })
    })
    .await?;
    let count = copies.len() as u64;
    let events = copies
        .into_iter()
        .map(|message| {
            (
                Topic::Chat(message.chat_id),
                Event::MessageCreated { message },
            )
        })
        .collect();
    app.bus.publish_all(events).await;
    Ok(count)
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
            let mut messages = query
                .order_by_asc(message::Column::Seq)
                .limit(first + 1)
                .all(&app.db)
                .await?;
            let has_next = messages.len() as u64 > first;
            messages.truncate(first as usize);
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
            let mut messages = query
                .order_by_desc(message::Column::Seq)
                .limit(last + 1)
                .all(&app.db)
                .await?;
            let has_previous = messages.len() as u64 > last;
            messages.truncate(last as usize);
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
            let mut messages = base
                .order_by_desc(message::Column::Seq)
                .offset(skip)
                .limit(limit + 1)
                .all(&app.db)
                .await?;
            let has_previous = messages.len() as u64 > limit;
            messages.truncate(limit as usize);
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
    if first == 0 || first > SEARCH_PAGE_MAX {
        return Err(AppError::bad_input(
            "first",
            format!("first must be between 1 and {SEARCH_PAGE_MAX}"),
        ));
    }
    let mut query = search_query(viewer, text);
    if let Some(chat_id) = chat_id {
        chat_access(app, viewer, chat_id, Need::Member).await?;
        query = query.filter(message::Column::ChatId.eq(chat_id));
    }
    if let Some(after) = after {
        query = query.filter(message::Column::Id.lt(after));
    }
    let mut found = query
        .order_by_desc(message::Column::Id)
        .limit(first + 1)
        .all(&app.db)
        .await?;
    let has_next = found.len() as u64 > first;
    found.truncate(first as usize);
    Ok((found, has_next))
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

/// The message kind a file makes: images → IMAGE, audio → AUDIO, anything else → FILE.
pub fn kind_of(content_type: &str) -> MessageKind {
    if content_type.starts_with("image/") {
        MessageKind::Image
    } else if content_type.starts_with("audio/") {
        MessageKind::Audio
    } else {
        MessageKind::File
    }
}

/// The caller's uploads that are waiting to be attached, in the order given.
async fn pending_attachments(
    app: &AppState,
    viewer: &Viewer,
    ids: &[Uuid],
) -> AppResult<Vec<file::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if ids.len() > ATTACHMENTS_MAX {
        return Err(AppError::bad_input(
            "attachmentIds",
            format!("at most {ATTACHMENTS_MAX} attachments"),
        ));
    }
    let found = file::Entity::find()
        .filter(file::Column::Id.is_in(ids.to_vec()))
        .all(&app.db)
        .await?;
    ids.iter()
        .map(|id| {
            found
                .iter()
                .find(|f| f.id == *id)
                .filter(|f| {
                    f.uploader_id == Some(viewer.user_id)
                        && f.purpose == Purpose::Attachment
                        && f.message_id.is_none()
                })
                .cloned()
                .ok_or_else(|| {
                    AppError::bad_input(
                        "attachmentIds",
                        format!("{id} is not an upload of yours waiting to be attached"),
                    )
                })
        })
        .collect()
}

fn checked_content(app: &AppState, content: &str) -> AppResult<String> {
    let trimmed = content.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input("content", "content must not be empty"));
    }
    let max = app.config.max_message_length;
    if trimmed.chars().count() > max {
        return Err(AppError::bad_input(
            "content",
            format!("content must be at most {max} characters long"),
        ));
    }
    Ok(trimmed.to_string())
}

/// A message about to be written.
pub struct Draft {
    pub chat_id: Uuid,
    pub sender_id: Option<Uuid>,
    pub kind: MessageKind,
    pub content: Option<String>,
    pub reply_to_id: Option<Uuid>,
    pub forwarded_from_message_id: Option<Uuid>,
    pub forwarded_from_sender_id: Option<Uuid>,
}

/// Writes a message inside the caller's transaction: takes the chat's next sequence number
/// (the UPDATE locks the chat row until commit, so numbers follow commit order), records it as
/// the chat's last message, and moves the sender's own markers past it.
pub async fn insert<C: ConnectionTrait>(db: &C, draft: Draft) -> AppResult<message::Model> {
    let id = Uuid::now_v7();
    let now = Utc::now();
    chat::Entity::update_many()
        .col_expr(
            chat::Column::LastSeq,
            Expr::col(chat::Column::LastSeq).add(1),
        )
        .col_expr(chat::Column::LastMessageId, Expr::value(id))
        .col_expr(chat::Column::LastActivityAt, Expr::value(now))
        .filter(chat::Column::Id.eq(draft.chat_id))
        .exec(db)
        .await?;
    let seq = chat::Entity::find_by_id(draft.chat_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::NotFound("chat not found".into()))?
        .last_seq;
    let message = message::ActiveModel {
        id: Set(id),
        chat_id: Set(draft.chat_id),
        seq: Set(seq),
        sender_id: Set(draft.sender_id),
        kind: Set(draft.kind),
        content: Set(draft.content),
        reply_to_id: Set(draft.reply_to_id),
        forwarded_from_message_id: Set(draft.forwarded_from_message_id),
        forwarded_from_sender_id: Set(draft.forwarded_from_sender_id),
        created_at: Set(now),
        edited_at: Set(None),
        deleted_at: Set(None),
    }
    .insert(db)
    .await?;
    if let Some(sender) = draft.sender_id {
        chat_member::Entity::update_many()
            .col_expr(chat_member::Column::LastReadSeq, Expr::value(seq))
            .col_expr(chat_member::Column::LastDeliveredSeq, Expr::value(seq))
            .filter(chat_member::Column::ChatId.eq(draft.chat_id))
            .filter(chat_member::Column::UserId.eq(sender))
            .exec(db)
            .await?;
    }
    Ok(message)
}
