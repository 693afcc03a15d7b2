//! Membership: adding and removing people, roles, muting, leaving (with ownership handed on),
//! and the events that tell a chat and its people about it.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
    chats::{not_direct, unique_to_conflict},
    in_transaction, users,
};
use crate::{
    entity::{
        chat,
        chat_member::{self, MemberRole},
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// Adds users to a group or room (admins); returns how many were not members before.
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
    let existing: Vec<Uuid> = chat_member::Entity::find()
        .filter(chat_member::Column::ChatId.eq(chat_id))
        .filter(chat_member::Column::UserId.is_in(ids.clone()))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    let new: Vec<Uuid> = ids
        .into_iter()
        .filter(|id| !existing.contains(id))
        .collect();
    let now = Utc::now();
    let count = new.len() as u64;
    let joined = new.clone();
    in_transaction(app, |txn| {
        Box::pin(async move {
            for user in new {
                add_member(txn, chat_id, user, MemberRole::Member, now).await?;
            }
            Ok(())
        })
    })
    .await?;
    announce_joined(app, chat_id, &joined).await;
    Ok(count)
}

/// Removes a member (admins). The owner cannot be removed; only the owner removes admins.
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
    chat_member::Entity::delete_by_id((chat_id, user_id))
        .exec(&app.db)
        .await?;
    announce_left(app, chat_id, user_id).await;
    Ok(())
}

/// Makes a member an admin (`promote`) or a plain member again; the owner's role never changes.
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
    let mut model: chat_member::ActiveModel = target.into();
    model.role = Set(role);
    model.update(&app.db).await?;
    let event = Event::MemberRoleChanged {
        chat_id,
        user_id,
        role,
    };
    app.bus.publish(Topic::Chat(chat_id), event).await;
    Ok(())
}

/// Mutes or unmutes a member (admins); muted members cannot post. The owner cannot be muted.
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
pub async fn leave(app: &AppState, viewer: &Viewer, chat_id: Uuid) -> AppResult<()> {
    let access = chat_access(app, viewer, chat_id, Need::Member).await?;
    not_direct(&access)?;
    let was_owner = access.role() == Some(MemberRole::Owner);
    let me = viewer.user_id;
    let heir = in_transaction(app, |txn| {
        Box::pin(async move {
            chat_member::Entity::delete_by_id((chat_id, me))
                .exec(txn)
                .await?;
            if !was_owner {
                return Ok(None);
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
            if let Some(heir) = &heir {
                let mut model: chat_member::ActiveModel = heir.clone().into();
                model.role = Set(MemberRole::Owner);
                model.update(txn).await?;
            }
            Ok(heir.map(|h| h.user_id))
        })
    })
    .await?;
    announce_left(app, chat_id, me).await;
    if let Some(user_id) = heir {
        let event = Event::MemberRoleChanged {
            chat_id,
            user_id,
            role: MemberRole::Owner,
        };
        app.bus.publish(Topic::Chat(chat_id), event).await;
    }
    Ok(())
}

/// Inserts a membership row; a new member has read nothing that came before they joined.
pub async fn add_member<C: ConnectionTrait>(
    db: &C,
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
    }
    .insert(db)
    .await
    .map_err(unique_to_conflict)?;
    Ok(())
}

async fn member(app: &AppState, chat_id: Uuid, user_id: Uuid) -> AppResult<chat_member::Model> {
    chat_member::Entity::find_by_id((chat_id, user_id))
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound("member not found".into()))
}

/// Tells a chat that people joined it, and each of them that they were added.
pub async fn announce_joined(app: &AppState, chat_id: Uuid, users: &[Uuid]) {
    let mut events = Vec::with_capacity(users.len() * 2);
    for &user_id in users {
        events.push((
            Topic::Chat(chat_id),
            Event::MemberJoined { chat_id, user_id },
        ));
        events.push((
            Topic::User(user_id),
            Event::AddedToChat { chat_id, user_id },
        ));
    }
    app.bus.publish_all(events).await;
}

/// Tells a chat that someone left (or was removed), and them that they are out.
pub async fn announce_left(app: &AppState, chat_id: Uuid, user_id: Uuid) {
    app.bus
        .publish_all(vec![
            (Topic::Chat(chat_id), Event::MemberLeft { chat_id, user_id }),
            (
                Topic::User(user_id),
                Event::RemovedFromChat { chat_id, user_id },
            ),
        ])
        .await;
}
