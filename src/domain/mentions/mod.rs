//! Mentions and replies: whom a message names (`@username`, or `@all` from an admin of a group
//! or room) and whom it answers. Mentioned members are stored with the message
//! (`message_mentions`), so a member's unread mentions are counted with their unread messages;
//! they and the author of the message replied to are notified in the same write, unless the
//! chat is muted for them, they chose mentions only (for a reply), or they blocked the sender.
//! An edit stores the new mentions and notifies only members never notified of that message.
mod parse;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect,
};
use uuid::Uuid;

pub use parse::{Mentioned, NAMES_MAX, mentions};

use super::{
    Outbox,
    access::{self, ChatAccess},
    notifications::{self, New},
};
use crate::{
    entity::{
        chat::ChatKind,
        chat_member, message, message_mention,
        notification::{self, NotificationKind},
        user,
    },
    error::AppResult,
};

/// Whom a message reaches, resolved against its chat's members.
pub(super) struct Reach {
    /// Mentioned members, and whether each was named (not only reached through `@all`).
    mentioned: Vec<(Uuid, bool)>,
    /// Mentioned members the chat may notify now.
    notify_mentioned: Vec<Uuid>,
    /// The author of the message replied to, when the chat may notify them of a reply.
    notify_reply: Option<Uuid>,
}

/// Rows per INSERT: 5 values each, far below SQLite's 32,766 bound values.
const INSERT_ROWS: usize = 2_000;

/// Whether `content` names anyone (before it is resolved): messages that do not, and answer
/// nobody, are written on the plain path.
pub(super) fn may_reach(content: Option<&str>) -> bool {
    content.is_some_and(|text| !mentions(text).is_empty())
}

/// Resolves whom `content` mentions and whom the reply (to a message by `reply_author`) reaches,
/// among the members of the chat the sender has `access` to. Non-members, unknown names, the
/// sender and members who blocked the sender are left out; `@all` counts only from an admin of a
/// group or room. None when the message reaches nobody.
pub(super) async fn resolve(
    db: &impl ConnectionTrait,
    sender: Uuid,
    access: &ChatAccess,
    content: Option<&str>,
    reply_author: Option<Uuid>,
) -> AppResult<Option<Reach>> {
    let found = content.map(mentions).unwrap_or_default();
    let everyone = found.all
        && access.chat.kind != ChatKind::Direct
        && access.role().is_some_and(|r| r.is_admin());
    let reply_author = reply_author.filter(|&author| author != sender);
    if found.names.is_empty() && !everyone && reply_author.is_none() {
        return Ok(None);
    }
    let mut wanted = Condition::any();
    if everyone {
        wanted = wanted.add(chat_member::Column::ChatId.eq(access.chat.id));
    }
    if !found.names.is_empty() {
        wanted = wanted.add(user::Column::UsernameKey.is_in(found.names.iter().cloned()));
    }
    if let Some(author) = reply_author {
        wanted = wanted.add(chat_member::Column::UserId.eq(author));
    }
    let members = chat_member::Entity::find()
        .select_also(user::Entity)
        .join(JoinType::InnerJoin, member_user())
        .filter(chat_member::Column::ChatId.eq(access.chat.id))
        .filter(chat_member::Column::UserId.ne(sender))
        .filter(wanted)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = members.iter().map(|(m, _)| m.user_id).collect();
    let refusing = access::blocked_me(db, sender, &ids).await?;
    let now = Utc::now();
    let mut reach = Reach {
        mentioned: Vec::new(),
        notify_mentioned: Vec::new(),
        notify_reply: None,
    };
    for (member, user) in members {
        if refusing.contains(&member.user_id) {
            continue;
        }
        let named = user.is_some_and(|u| found.names.contains(&u.username_key));
        if named || everyone {
            reach.mentioned.push((member.user_id, named));
            if member.notifies(true, now) {
                reach.notify_mentioned.push(member.user_id);
            }
        } else if Some(member.user_id) == reply_author && member.notifies(false, now) {
            reach.notify_reply = Some(member.user_id);
        }
    }
    Ok(Some(reach))
}

/// A membership joined to its user.
fn member_user() -> sea_orm::RelationDef {
    chat_member::Entity::belongs_to(user::Entity)
        .from(chat_member::Column::UserId)
        .to(user::Column::Id)
        .into()
}

/// Stores the mentions of the new `message` and notifies whom it reaches, in the caller's write.
pub(super) async fn record(
    db: &impl ConnectionTrait,
    outbox: &mut Outbox<'_>,
    message: &message::Model,
    reach: Reach,
) -> AppResult<()> {
    store_mentions(db, message, &reach.mentioned).await?;
    let Some(sender) = message.sender_id else {
        return Ok(());
    };
    let about = |kind, users| New {
        kind,
        actor_id: sender,
        chat_id: Some(message.chat_id),
        message_id: Some(message.id),
        users,
    };
    if !reach.notify_mentioned.is_empty() {
        let new = about(NotificationKind::Mention, reach.notify_mentioned);
        notifications::store(db, outbox, new).await?;
    }
    if let Some(author) = reach.notify_reply {
        notifications::store(db, outbox, about(NotificationKind::Reply, vec![author])).await?;
    }
    Ok(())
}

/// Replaces the mentions of the edited `message` with what its new text reaches (None: nobody),
/// notifying only members never notified of a mention in it before.
pub(super) async fn revise(
    db: &impl ConnectionTrait,
    outbox: &mut Outbox<'_>,
    message: &message::Model,
    reach: Option<Reach>,
) -> AppResult<()> {
    message_mention::Entity::delete_many()
        .filter(message_mention::Column::MessageId.eq(message.id))
        .exec(db)
        .await?;
    let Some(mut reach) = reach else {
        return Ok(());
    };
    reach.notify_reply = None;
    if !reach.notify_mentioned.is_empty() {
        let notified: Vec<Uuid> = notification::Entity::find()
            .select_only()
            .column(notification::Column::UserId)
            .filter(notification::Column::MessageId.eq(message.id))
            .filter(notification::Column::Kind.eq(NotificationKind::Mention))
            .filter(notification::Column::UserId.is_in(reach.notify_mentioned.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        reach.notify_mentioned.retain(|u| !notified.contains(u));
    }
    record(db, outbox, message, reach).await
}

async fn store_mentions(
    db: &impl ConnectionTrait,
    message: &message::Model,
    mentioned: &[(Uuid, bool)],
) -> AppResult<()> {
    for rows in mentioned.chunks(INSERT_ROWS) {
        let rows = rows.iter().map(|&(user_id, by_name)| {
            message_mention::ActiveModel::from(message_mention::Model {
                message_id: message.id,
                user_id,
                chat_id: message.chat_id,
                seq: message.seq,
                by_name,
            })
        });
        message_mention::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The members each of the messages `ids` names (not those reached only through `@all`).
pub async fn named_in(
    db: &impl ConnectionTrait,
    ids: &[Uuid],
) -> AppResult<Vec<message_mention::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(message_mention::Entity::find()
        .filter(message_mention::Column::MessageId.is_in(ids.iter().copied()))
        .filter(message_mention::Column::ByName.eq(true))
        .all(db)
        .await?)
}

/// Which of the messages `ids` reached members through `@all`.
pub async fn reaching_all(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(message_mention::Entity::find()
        .select_only()
        .column(message_mention::Column::MessageId)
        .distinct()
        .filter(message_mention::Column::MessageId.is_in(ids.iter().copied()))
        .filter(message_mention::Column::ByName.eq(false))
        .into_tuple()
        .all(db)
        .await?)
}
