//! Writing messages: sending (sequence numbers handed out inside the sending transaction, so a
//! chat's order is its commit order), attachments, mentions and replies (`mentions`), editing,
//! soft deletion and forwarding.
//! Reading history lives in `history`.
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use uuid::Uuid;

pub mod group_commit;
mod one_statement;

use super::files::kind_of;
use super::{
    Outbox, Viewer,
    access::{Need, chat_access, message_access},
    autocommit, chats, in_transaction, mentions, previews,
};
use crate::{
    entity::{
        chat_member,
        file::{self, Purpose},
        message::{self, MessageKind},
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// Most chats one forward may target.
pub const FORWARD_TARGETS_MAX: usize = 20;

/// Input of `sendMessage`.
pub struct Outgoing {
    pub chat_id: Option<Uuid>,
    pub recipient_id: Option<Uuid>,
    pub content: String,
    pub reply_to_id: Option<Uuid>,
    /// Files uploaded by the sender and not attached anywhere yet.
    pub attachment_ids: Vec<Uuid>,
    /// Reply in the thread of this message (of the same chat).
    pub thread_root_id: Option<Uuid>,
}

/// Most attachments on one message.
pub const ATTACHMENTS_MAX: usize = 10;

/// Sends a text message to a chat, or to a user (opening the direct chat on first use). A link
/// in it gets its preview in the background.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat))]
pub async fn send(app: &AppState, viewer: &Viewer, input: Outgoing) -> AppResult<message::Model> {
    let message = write_sent(app, viewer, input).await?;
    previews::after_send(app, &message);
    Ok(message)
}

/// `send`'s checks and write.
async fn write_sent(app: &AppState, viewer: &Viewer, input: Outgoing) -> AppResult<message::Model> {
    app.limits.per_user(Action::Send, viewer, 1).await?;
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
    tracing::Span::current().record("chat", tracing::field::display(chat_id));
    let attachments = pending_attachments(app, viewer, &input.attachment_ids).await?;
    let content = if attachments.is_empty() || !input.content.trim().is_empty() {
        Some(checked_content(app, &input.content)?)
    } else {
        None
    };
    let access = chat_access(app, viewer, chat_id, Need::Post).await?;
    let mut reply_author = None;
    if let Some(reply_to) = input.reply_to_id {
        let target = message::Entity::find_by_id(reply_to).one(&app.db).await?;
        match target {
            Some(target) if target.chat_id == chat_id => reply_author = target.sender_id,
            _ => {
                return Err(AppError::bad_input(
                    "replyToId",
                    "replyToId must be a message of the same chat",
                ));
            }
        }
    }
    let thread = match input.thread_root_id {
        Some(root) => Some(super::threads::root_for_reply(app, chat_id, root).await?),
        None => None,
    };
    let reach = if reply_author.is_some() || mentions::may_reach(content.as_deref()) {
        mentions::resolve(
            &app.db,
            viewer.user_id,
            &access,
            content.as_deref(),
            reply_author,
        )
        .await?
    } else {
        None
    };
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
        thread_root_id: thread.as_ref().map(|root| root.id),
    };
    let file_ids: Vec<Uuid> = attachments.iter().map(|f| f.id).collect();
    if reach.is_some() || thread.is_some() {
        // It names or answers someone, or replies in a thread: the message, its mentions, the
        // notifications and the thread's followers are written together.
        return in_transaction(app, |txn, outbox| {
            Box::pin(async move {
                let message = insert(txn, outbox, draft).await?;
                attach(txn, &message, file_ids).await?;
                if let Some(reach) = reach {
                    mentions::record(txn, outbox, &message, reach).await?;
                }
                if let Some(root) = thread {
                    super::threads::replied(txn, &root, &message).await?;
                }
                Ok(message)
            })
        })
        .await;
    }
    if let Some(queue) = &app.sends {
        // SQLite: written with whatever other sends are queued, in one transaction.
        return queue.send(draft, file_ids).await;
    }
    if file_ids.is_empty() && app.db.get_database_backend() == sea_orm::DbBackend::Postgres {
        // One statement, atomic by itself: no BEGIN and COMMIT round trips.
        return autocommit(app, |db, outbox| {
            Box::pin(async move { insert(db, outbox, draft).await })
        })
        .await;
    }
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let message = insert(txn, outbox, draft).await?;
            attach(txn, &message, file_ids).await?;
            Ok(message)
        })
    })
    .await
}

/// Binds the uploads `file_ids` to the new `message`, in the caller's transaction.
async fn attach(
    txn: &impl ConnectionTrait,
    message: &message::Model,
    file_ids: Vec<Uuid>,
) -> AppResult<()> {
    if !file_ids.is_empty() {
        file::Entity::update_many()
            .col_expr(file::Column::MessageId, Expr::value(message.id))
            .col_expr(file::Column::ChatId, Expr::value(message.chat_id))
            .filter(file::Column::Id.is_in(file_ids))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Changes the text of one's own message.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, message = %id))]
pub async fn edit(
    app: &AppState,
    viewer: &Viewer,
    id: Uuid,
    content: &str,
) -> AppResult<message::Model> {
    let (message, access) = message_access(app, viewer, id, Need::Member).await?;
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
    if message.kind == MessageKind::Poll {
        return Err(AppError::bad_input("id", "a poll cannot be edited"));
    }
    let content = checked_content(app, content)?;
    // Mentions before or after the edit: they are stored anew with the text.
    let mentioning =
        mentions::may_reach(message.content.as_deref()) || mentions::may_reach(Some(&content));
    let reach = if mentioning {
        mentions::resolve(&app.db, viewer.user_id, &access, Some(&content), None).await?
    } else {
        None
    };
    // A new link unbinds the old preview with the text; the new one is fetched after commit.
    let relinked = previews::link_changed(message.content.as_deref(), &content);
    let mut model: message::ActiveModel = message.into();
    model.content = Set(Some(content));
    model.edited_at = Set(Some(Utc::now()));
    let message = if mentioning || relinked {
        in_transaction(app, |txn, outbox| {
            Box::pin(async move {
                let message = model.update(txn).await?;
                if mentioning {
                    mentions::revise(txn, outbox, &message, reach).await?;
                }
                if relinked {
                    previews::unbind(txn, message.id).await?;
                }
                Ok(edited(outbox, message))
            })
        })
        .await?
    } else {
        autocommit(app, |db, outbox| {
            Box::pin(async move { Ok(edited(outbox, model.update(db).await?)) })
        })
        .await?
    };
    if relinked {
        previews::after_send(app, &message);
    }
    Ok(message)
}

/// Records the `MessageEdited` event of `message`.
fn edited(outbox: &mut Outbox<'_>, message: message::Model) -> message::Model {
    let event = Event::MessageEdited {
        message: message.clone(),
    };
    outbox.record(Topic::Chat(message.chat_id), event);
    message
}

/// Soft-deletes a message: the sender, or an admin of the chat. Its text is erased.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, message = %id))]
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
    let message = autocommit(app, |db, outbox| {
        Box::pin(async move {
            let message = model.update(db).await?;
            let event = Event::MessageDeleted {
                chat_id: message.chat_id,
                message_id: message.id,
            };
            outbox.record(Topic::Chat(message.chat_id), event);
            Ok(message)
        })
    })
    .await?;
    // Nobody can fetch a deleted message's attachments; their bytes go too.
    super::files::remove_attached(app, message.id).await;
    Ok(message)
}

/// One message the caller may read.
pub async fn get(app: &AppState, viewer: &Viewer, id: Uuid) -> AppResult<message::Model> {
    Ok(message_access(app, viewer, id, Need::Read).await?.0)
}

/// Copies a message into other chats; the copies remember the original sender. Every target is
/// checked before anything is written, and all copies are written together.
#[tracing::instrument(
    skip_all,
    fields(user = %viewer.user_id, message = %id, targets = targets.len())
)]
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
    if source.kind == MessageKind::Poll {
        return Err(AppError::bad_input(
            "messageId",
            "a poll cannot be forwarded",
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
    // Every copy is a message sent.
    app.limits
        .per_user(Action::Send, viewer, unique.len() as u32)
        .await?;
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
            thread_root_id: None,
        })
        .collect();
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let mut count = 0;
            for draft in drafts {
                insert(txn, outbox, draft).await?;
                count += 1;
            }
            Ok(count)
        })
    })
    .await
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

/// Writes a new message of `kind` from `sender` in the caller's transaction (a poll's message):
/// the chat's next `seq`, its `MessageCreated` event recorded.
pub(super) async fn write<C: ConnectionTrait>(
    db: &C,
    outbox: &mut Outbox<'_>,
    chat_id: Uuid,
    sender: Uuid,
    kind: MessageKind,
    content: String,
) -> AppResult<message::Model> {
    let draft = Draft {
        chat_id,
        sender_id: Some(sender),
        kind,
        content: Some(content),
        reply_to_id: None,
        forwarded_from_message_id: None,
        forwarded_from_sender_id: None,
        thread_root_id: None,
    };
    insert(db, outbox, draft).await
}

/// A message about to be written.
struct Draft {
    chat_id: Uuid,
    sender_id: Option<Uuid>,
    kind: MessageKind,
    content: Option<String>,
    reply_to_id: Option<Uuid>,
    forwarded_from_message_id: Option<Uuid>,
    forwarded_from_sender_id: Option<Uuid>,
    thread_root_id: Option<Uuid>,
}

/// Writes a message inside the caller's transaction: takes the chat's next sequence number
/// (the UPDATE locks the chat row until commit, so numbers follow commit order), records it as
/// the chat's last message and moves the sender's own markers past it (neither for a reply in a
/// thread), and records its `MessageCreated` event.
async fn insert<C: ConnectionTrait>(
    db: &C,
    outbox: &mut Outbox<'_>,
    draft: Draft,
) -> AppResult<message::Model> {
    let id = Uuid::now_v7();
    let message = if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        one_statement::insert(db, id, Utc::now(), &draft).await?
    } else {
        three_statements(db, id, draft).await?
    };
    let event = Event::MessageCreated {
        message: message.clone(),
    };
    outbox.record(Topic::Chat(message.chat_id), event);
    Ok(message)
}

/// `insert` where data-modifying CTEs are missing (SQLite): the same three writes, one by one, in
/// the caller's transaction.
async fn three_statements<C: ConnectionTrait>(
    db: &C,
    id: Uuid,
    draft: Draft,
) -> AppResult<message::Model> {
    // The number and the time are taken together, under the chat row's lock: a send that
    // read the clock earlier but got the lock later takes its predecessor's time, so
    // `createdAt` never goes backwards against `seq`.
    let last_main = draft.thread_root_id.is_none().then_some(id);
    let (seq, now) = group_commit::take_numbers(db, draft.chat_id, 1, last_main, Utc::now())
        .await?
        .ok_or_else(|| AppError::NotFound("chat not found".into()))?;
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
        thread_root_id: Set(draft.thread_root_id),
    }
    .insert(db)
    .await?;
    // A reply in a thread leaves the chat's markers alone: the main timeline is not read by it.
    if let Some(sender) = draft.sender_id.filter(|_| draft.thread_root_id.is_none()) {
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
