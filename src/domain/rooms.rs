//! Rooms: chats of kind ROOM that people join. Public rooms are open to anyone signed in;
//! private rooms only to users an admin invited (to everyone else they do not exist).
use chrono::Utc;
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{self, ChatAccess, Need, chat_access},
    chats::{self, ChatCursor, ChatPage, NewChat},
    in_transaction, members, notifications, users, validate,
};
use crate::{
    entity::{
        chat::{self, ChatKind},
        chat_invite,
        chat_member::{self, MemberRole},
        notification::NotificationKind,
    },
    error::{AppError, AppResult},
    limits::Action,
    state::AppState,
};

/// Creates a room with the caller as owner.
pub async fn create(app: &AppState, viewer: &Viewer, input: NewChat) -> AppResult<chat::Model> {
    chats::create(app, viewer, ChatKind::Room, input).await
}

/// Joins a room: public ones freely, private ones with an invite (which is used up).
/// Joining a room one is already in just returns it.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id))]
pub async fn join(app: &AppState, viewer: &Viewer, room_id: Uuid) -> AppResult<chat::Model> {
    let hidden = || AppError::NotFound("room not found".into());
    let room = chat::Entity::find_by_id(room_id)
        .one(&app.db)
        .await?
        .filter(|c| c.kind == ChatKind::Room)
        .ok_or_else(hidden)?;
    if chat_member::Entity::find_by_id((room_id, viewer.user_id))
        .one(&app.db)
        .await?
        .is_some()
    {
        return Ok(room);
    }
    let invited = chat_invite::Entity::find_by_id((room_id, viewer.user_id))
        .one(&app.db)
        .await?
        .is_some();
    if room.is_private && !invited {
        return Err(hidden());
    }
    let me = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            chat_invite::Entity::delete_by_id((room_id, me))
                .exec(txn)
                .await?;
            members::add_member(txn, outbox, room_id, me, MemberRole::Member, Utc::now()).await
        })
    })
    .await?;
    Ok(room)
}

/// Leaves a room.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id))]
pub async fn leave(app: &AppState, viewer: &Viewer, room_id: Uuid) -> AppResult<()> {
    room_access(app, viewer, room_id).await?;
    members::leave(app, viewer, room_id).await
}

/// Invites users to a room (admins); returns how many new invites were made (members and
/// already-invited users are not counted).
#[tracing::instrument(
    skip_all,
    fields(user = %viewer.user_id, room = %room_id, invited = identifiers.len())
)]
pub async fn invite(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    identifiers: &[String],
) -> AppResult<u64> {
    app.limits.per_user(Action::Invite, viewer, 1).await?;
    let room = room_access(app, viewer, room_id).await?;
    access::check(viewer, &room.chat, room.membership.as_ref(), Need::Admin)?;
    let users = users::resolve_identifiers(app, "identifiers", identifiers).await?;
    let ids: Vec<Uuid> = users.iter().map(|u| u.id).collect();
    let members = members::already_members(app, room_id, &ids).await?;
    // Whoever blocked the caller is passed over, as if already invited.
    let refusing = access::blocked_me(&app.db, viewer.user_id, &ids).await?;
    let invited: Vec<Uuid> = chat_invite::Entity::find()
        .filter(chat_invite::Column::ChatId.eq(room_id))
        .filter(chat_invite::Column::UserId.is_in(ids.clone()))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|i| i.user_id)
        .collect();
    let invitees: Vec<Uuid> = ids
        .into_iter()
        .filter(|id| !members.contains(id) && !invited.contains(id) && !refusing.contains(id))
        .collect();
    let new: Vec<chat_invite::ActiveModel> = invitees
        .iter()
        .map(|&user_id| chat_invite::ActiveModel {
            chat_id: sea_orm::Set(room_id),
            user_id: sea_orm::Set(user_id),
            invited_by: sea_orm::Set(Some(viewer.user_id)),
            created_at: sea_orm::Set(Utc::now()),
        })
        .collect();
    let count = new.len() as u64;
    if new.is_empty() {
        return Ok(0);
    }
    let inviter = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            chat_invite::Entity::insert_many(new).exec(txn).await?;
            let notice = notifications::New {
                kind: NotificationKind::RoomInvite,
                actor_id: inviter,
                chat_id: Some(room_id),
                message_id: None,
                users: invitees,
            };
            notifications::notify(txn, outbox, notice).await
        })
    })
    .await?;
    Ok(count)
}

/// Rooms the caller may see: every public room and the private rooms they belong to (staff see
/// all), optionally filtered by name, newest activity first.
pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    search: Option<&str>,
    first: u64,
    after: Option<ChatCursor>,
) -> AppResult<ChatPage> {
    let query = chat::Entity::find().filter(visible_rooms(viewer, search)?);
    chats::page_by_activity(app, query, first, after).await
}

/// How many rooms `list` would return in all.
pub async fn count(app: &AppState, viewer: &Viewer, search: Option<&str>) -> AppResult<u64> {
    Ok(chat::Entity::find()
        .filter(visible_rooms(viewer, search)?)
        .count(&app.db)
        .await?)
}

fn visible_rooms(viewer: &Viewer, search: Option<&str>) -> AppResult<Condition> {
    let mut condition = Condition::all().add(chat::Column::Kind.eq(ChatKind::Room));
    if !viewer.is_staff {
        let mine = Query::select()
            .column(chat_member::Column::ChatId)
            .from(chat_member::Entity)
            .and_where(Expr::col(chat_member::Column::UserId).eq(viewer.user_id))
            .to_owned();
        condition = condition.add(
            Condition::any()
                .add(chat::Column::IsPrivate.eq(false))
                .add(chat::Column::Id.in_subquery(mine)),
        );
    }
    if let Some(text) = search.map(str::trim).filter(|t| !t.is_empty()) {
        if text.chars().count() > chats::NAME_MAX {
            return Err(AppError::bad_input("search", "search is too long"));
        }
        let pattern = validate::like_pattern_contains(&text.to_lowercase());
        condition = condition.add(
            Expr::expr(Func::lower(Expr::col(chat::Column::Name)))
                .like(LikeExpr::new(pattern).escape('\\')),
        );
    }
    Ok(condition)
}

/// The room and the caller's membership, once they may see it: NOT_FOUND for any other chat.
async fn room_access(app: &AppState, viewer: &Viewer, room_id: Uuid) -> AppResult<ChatAccess> {
    let access = chat_access(app, viewer, room_id, Need::Read).await?;
    if access.chat.kind != ChatKind::Room {
        return Err(AppError::NotFound("room not found".into()));
    }
    Ok(access)
}
