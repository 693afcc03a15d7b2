//! Membership: adding and removing people, roles, muting, leaving (with ownership handed on),
//! and the events that tell a chat and its people about it.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::{
    Outbox, Viewer,
    access::{self, Need, chat_access},
    autocommit,
    chats::{not_direct, unique_to_conflict},
    in_transaction, users, voice,
};
use crate::{
    entity::{
        chat::{self, ChatKind},
        chat_member::{self, MemberRole},
        notification::NotificationKind,
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// Adds users to a group or room (admins); returns how many were not members before.
#[tracing::instrument(
    skip_all,
    fields(user = %viewer.user_id, chat = %chat_id, added = identifiers.len())
)]
pub async fn add_members(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    identifiers: &[String],
) -> AppResult<u64> {
    app.limits.per_user(Action::Invite, viewer, 1).await?;
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    not_direct(&access)?;
    let users = users::resolve_identifiers(app, "identifiers", identifiers).await?;
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let existing = already_members(app, chat_id, &ids).await?;
    // Whoever blocked the caller is passed over, as if already added.
    let refusing = access::blocked_me(&app.db, viewer.user_id, &ids).await?;
    let new: Vec<Uuid> = ids
        .into_iter()
        .filter(|id| !existing.contains(id) && !refusing.contains(id))
        .collect();
    let now = Utc::now();
    let count = new.len() as u64;
    let group = access.chat.kind == ChatKind::Group;
    let actor = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            for &user in &new {
                add_member(txn, outbox, chat_id, user, MemberRole::Member, now).await?;
            }
            if group {
                added_to_group(txn, outbox, chat_id, new, actor).await?;
            }
            Ok(())
        })
    })
    .await?;
    Ok(count)
}

/// Notifies `users` that `actor_id` added them to the group `chat_id`.
pub(super) async fn added_to_group(
    db: &impl ConnectionTrait,
    outbox: &mut Outbox<'_>,
    chat_id: Uuid,
    users: Vec<Uuid>,
    actor_id: Uuid,
) -> AppResult<()> {
    let new = super::notifications::New {
        kind: NotificationKind::AddedToGroup,
        actor_id,
        chat_id: Some(chat_id),
        message_id: None,
        users,
    };
    super::notifications::notify(db, outbox, new).await
}

/// Which of `users` already belong to the chat.
pub(super) async fn already_members(
    app: &AppState,
    chat_id: Uuid,
    users: &[Uuid],
) -> AppResult<Vec<Uuid>> {
    Ok(chat_member::Entity::find()
        .filter(chat_member::Column::ChatId.eq(chat_id))
        .filter(chat_member::Column::UserId.is_in(users.iter().copied()))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect())
}

/// Removes a member (admins). The owner cannot be removed; only the owner removes admins.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat = %chat_id, member = %user_id))]
pub async fn remove_member(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    user_id: Uuid,
) -> AppResult<()> {
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    not_direct(&access)?;
    if user_id == viewer.user_id {
        return Err(AppError::bad_input(
            "userId",
            "use leaveChat to leave a chat",
        ));
    }
    let target = member(app, chat_id, user_id).await?;
    match target.role {
        MemberRole::Owner => return Err(AppError::Forbidden("the owner cannot be removed".into())),
        MemberRole::Admin if access.role() != Some(MemberRole::Owner) => {
            return Err(AppError::Forbidden(
                "only the owner may remove an admin".into(),
            ));
        }
        _ => {}
    }
    autocommit(app, |db, outbox| {
        Box::pin(async move { delete_member(db, outbox, chat_id, user_id).await })
    })
    .await
}

/// Makes a member an admin (`promote`) or a plain member again; the owner's role never changes.
#[tracing::instrument(
    skip_all,
    fields(user = %viewer.user_id, chat = %chat_id, member = %user_id, admin)
)]
pub async fn set_admin(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    user_id: Uuid,
    admin: bool,
) -> AppResult<()> {
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    not_direct(&access)?;
    let target = member(app, chat_id, user_id).await?;
    if target.role == MemberRole::Owner {
        return Err(AppError::Forbidden(
            "the owner's role cannot be changed".into(),
        ));
    }
    let role = if admin {
        MemberRole::Admin
    } else {
        MemberRole::Member
    };
    let model: chat_member::ActiveModel = target.into();
    autocommit(app, |db, outbox| {
        Box::pin(async move { set_role(db, outbox, model, role).await })
    })
    .await
}

/// Mutes or unmutes a member (admins); muted members cannot post. The owner cannot be muted.
#[tracing::instrument(
    skip_all,
    fields(user = %viewer.user_id, chat = %chat_id, member = %user_id, muted)
)]
pub async fn set_muted(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    user_id: Uuid,
    muted: bool,
) -> AppResult<()> {
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    not_direct(&access)?;
    let target = member(app, chat_id, user_id).await?;
    if target.role == MemberRole::Owner {
        return Err(AppError::Forbidden("the owner cannot be muted".into()));
    }
    let mut model: chat_member::ActiveModel = target.into();
    model.muted = Set(muted);
    model.update(&app.db).await?;
    Ok(())
}

/// Leaves a group or room. An owner leaving hands ownership to the oldest admin, else the
/// oldest member.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat = %chat_id))]
pub async fn leave(app: &AppState, viewer: &Viewer, chat_id: Uuid) -> AppResult<()> {
    let access = chat_access(app, viewer, chat_id, Need::Member).await?;
    not_direct(&access)?;
    let was_owner = access.role() == Some(MemberRole::Owner);
    let me = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            delete_member(txn, outbox, chat_id, me).await?;
            if !was_owner {
                return Ok(());
            }
            let rest = chat_member::Entity::find()
                .filter(chat_member::Column::ChatId.eq(chat_id))
                .order_by_asc(chat_member::Column::JoinedAt)
                .all(txn)
                .await?;
            let heir = rest
                .iter()
                .find(|m| m.role == MemberRole::Admin)
                .or_else(|| rest.first())
                .cloned();
            if let Some(heir) = heir {
                set_role(txn, outbox, heir.into(), MemberRole::Owner).await?;
            }
            Ok(())
        })
    })
    .await
}

/// Inserts a membership row (a new member has read nothing that came before they joined) and
/// tells the chat that they joined, and them that they were added.
pub(super) async fn add_member<C: ConnectionTrait>(
    db: &C,
    outbox: &mut Outbox<'_>,
    chat_id: Uuid,
    user_id: Uuid,
    role: MemberRole,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let last_seq = chat::Entity::find_by_id(chat_id)
        .one(db)
        .await?
        .map_or(0, |c| c.last_seq);
    chat_member::ActiveModel {
        chat_id: Set(chat_id),
        user_id: Set(user_id),
        role: Set(role),
        muted: Set(false),
        archived: Set(false),
        last_read_seq: Set(last_seq),
        last_delivered_seq: Set(last_seq),
        joined_at: Set(now),
        notify_level: Set(chat_member::NotifyLevel::All),
        notifications_muted_until: Set(None),
    }
    .insert(db)
    .await
    .map_err(unique_to_conflict)?;
    record_membership(outbox, chat_id, user_id, true);
    Ok(())
}

/// Deletes a membership row and tells the chat that the member left (or was removed), and
/// them that they are out. A seat they held in the room's voice goes with it (announced first).
async fn delete_member<C: ConnectionTrait>(
    db: &C,
    outbox: &mut Outbox<'_>,
    chat_id: Uuid,
    user_id: Uuid,
) -> AppResult<()> {
    voice::free_seat(db, outbox, chat_id, user_id).await?;
    chat_member::Entity::delete_by_id((chat_id, user_id))
        .exec(db)
        .await?;
    record_membership(outbox, chat_id, user_id, false);
    Ok(())
}

/// Tells the chat that someone joined (or left), and them that they were added (or removed).
fn record_membership(outbox: &mut Outbox<'_>, chat_id: Uuid, user_id: Uuid, joined: bool) {
    let (to_chat, to_user) = if joined {
        (
            Event::MemberJoined { chat_id, user_id },
            Event::AddedToChat { chat_id, user_id },
        )
    } else {
        (
            Event::MemberLeft { chat_id, user_id },
            Event::RemovedFromChat { chat_id, user_id },
        )
    };
    outbox.record(Topic::Chat(chat_id), to_chat);
    outbox.record(Topic::User(user_id), to_user);
}

/// Gives a member a new role and tells the chat.
async fn set_role<C: ConnectionTrait>(
    db: &C,
    outbox: &mut Outbox<'_>,
    mut member: chat_member::ActiveModel,
    role: MemberRole,
) -> AppResult<()> {
    member.role = Set(role);
    let member = member.update(db).await?;
    let event = Event::MemberRoleChanged {
        chat_id: member.chat_id,
        user_id: member.user_id,
        role,
    };
    outbox.record(Topic::Chat(member.chat_id), event);
    Ok(())
}

async fn member(app: &AppState, chat_id: Uuid, user_id: Uuid) -> AppResult<chat_member::Model> {
    chat_member::Entity::find_by_id((chat_id, user_id))
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound("member not found".into()))
}
