//! Who may touch a chat, in one place. Every chat and message operation goes through
//! `chat_access` / `message_access`. Rule of thumb: a caller who may not even see a chat gets
//! NOT_FOUND (a private chat's existence is never revealed); one who may see it but not do the
//! thing gets FORBIDDEN. Who may reach a person (a direct chat, a friend request, an invite)
//! despite a block is decided here too (`reach`): someone blocked learns nothing beyond a
//! neutral refusal; so is who may see a user's presence (`sees_presence`, applied by `privacy`).
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect,
    RelationDef,
    sea_query::{Expr, ExprTrait, IntoCondition},
};
use uuid::Uuid;

use super::Viewer;
use crate::{
    entity::{
        block,
        chat::{self, ChatKind},
        chat_member::{self, MemberRole},
        message,
        user::PresenceVisibility,
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// What the caller wants to do with a chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Read it: members, staff, and anyone for a public room.
    Read,
    /// Act as a member (archive, react, mark read, leave).
    Member,
    /// Post messages: a member who is not muted.
    Post,
    /// Manage it: owner or admin.
    Admin,
}

/// A chat together with the caller's membership in it, once access is granted.
#[derive(Clone, Debug)]
pub struct ChatAccess {
    pub chat: chat::Model,
    pub membership: Option<chat_member::Model>,
}

impl ChatAccess {
    /// The caller's role, if a member.
    pub fn role(&self) -> Option<MemberRole> {
        self.membership.as_ref().map(|m| m.role)
    }
}

/// Whether the caller may see the chat at all.
pub fn can_see(
    viewer: &Viewer,
    chat: &chat::Model,
    membership: Option<&chat_member::Model>,
) -> bool {
    membership.is_some() || viewer.is_staff || (chat.kind == ChatKind::Room && !chat.is_private)
}

/// Checks `need` against an already loaded chat and membership.
pub fn check(
    viewer: &Viewer,
    chat: &chat::Model,
    membership: Option<&chat_member::Model>,
    need: Need,
) -> AppResult<()> {
    if !can_see(viewer, chat, membership) {
        return Err(AppError::NotFound("chat not found".into()));
    }
    let not_member = || {
        if chat.kind == ChatKind::Room {
            AppError::Forbidden("join the room first".into())
        } else {
            AppError::Forbidden("you are not a member of this chat".into())
        }
    };
    match need {
        Need::Read => Ok(()),
        Need::Member => membership.map(|_| ()).ok_or_else(not_member),
        Need::Post => match membership {
            None => Err(not_member()),
            Some(m) if m.muted => Err(AppError::Forbidden("you are muted in this chat".into())),
            Some(_) => Ok(()),
        },
        Need::Admin => match membership {
            Some(m) if m.role.is_admin() => Ok(()),
            _ => Err(AppError::Forbidden(
                "only the chat's admins may do this".into(),
            )),
        },
    }
}

/// Loads a chat and the caller's membership, and checks `need`.
pub async fn chat_access(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    need: Need,
) -> AppResult<ChatAccess> {
    // The chat and the caller's membership row, if any, in one statement.
    let (chat, membership) = chat::Entity::find_by_id(chat_id)
        .select_also(chat_member::Entity)
        .join(JoinType::LeftJoin, membership_of(viewer.user_id))
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound("chat not found".into()))?;
    check(viewer, &chat, membership.as_ref(), need)?;
    if need == Need::Post && chat.kind == ChatKind::Direct {
        let other = direct_other(&chat, viewer.user_id);
        reach(&app.db, viewer.user_id, other, Reach::Message).await?;
    }
    Ok(ChatAccess { chat, membership })
}

/// The other person of a direct chat (its key is `<smaller id>:<larger id>`).
fn direct_other(chat: &chat::Model, me: Uuid) -> Option<Uuid> {
    let (x, y) = chat.direct_key.as_deref()?.split_once(':')?;
    let (x, y) = (x.parse().ok()?, y.parse().ok()?);
    Some(if x == me { y } else { x })
}

/// How one person reaches another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Open a direct chat with them, or write in it.
    Message,
    /// Ask them to be friends.
    FriendRequest,
}

/// Refuses when either of two people blocked the other: FORBIDDEN, with a neutral reason for
/// the one who was blocked (the same as for any refusal of that kind) and a plain one for the
/// one who blocked. `other` None (not a person) is never refused.
pub async fn reach(
    db: &impl ConnectionTrait,
    me: Uuid,
    other: impl Into<Option<Uuid>>,
    how: Reach,
) -> AppResult<()> {
    let Some(other) = other.into() else {
        return Ok(());
    };
    let blocks = block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(block::Column::BlockerId.eq(me))
                        .add(block::Column::BlockedId.eq(other)),
                )
                .add(
                    Condition::all()
                        .add(block::Column::BlockerId.eq(other))
                        .add(block::Column::BlockedId.eq(me)),
                ),
        )
        .all(db)
        .await?;
    if blocks.iter().any(|b| b.blocker_id == me) {
        return Err(AppError::Forbidden(
            "you blocked this user: unblock them first".into(),
        ));
    }
    if !blocks.is_empty() {
        return Err(AppError::Forbidden(
            match how {
                Reach::Message => "you cannot message this user",
                Reach::FriendRequest => "you cannot send this user a friend request",
            }
            .into(),
        ));
    }
    Ok(())
}

/// Which of `users` blocked `me`: an invitation or an addition from `me` passes them over
/// without a word.
pub async fn blocked_me(
    db: &impl ConnectionTrait,
    me: Uuid,
    users: &[Uuid],
) -> AppResult<Vec<Uuid>> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    Ok(block::Entity::find()
        .filter(block::Column::BlockedId.eq(me))
        .filter(block::Column::BlockerId.is_in(users.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(|b| b.blocker_id)
        .collect())
}

/// `chat_access` for what only rooms have (a player, voice): any other chat is refused with
/// `BAD_USER_INPUT` on `roomId`, saying `only_rooms`.
pub async fn room_access(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    need: Need,
    only_rooms: &str,
) -> AppResult<ChatAccess> {
    let access = chat_access(app, viewer, room_id, need).await?;
    if access.chat.kind != ChatKind::Room {
        return Err(AppError::bad_input("roomId", only_rooms));
    }
    Ok(access)
}

/// chats → chat_members, joined on the chat and on `user`: at most one row per chat.
pub(crate) fn membership_of(user: Uuid) -> RelationDef {
    let member_to_chat: RelationDef = chat_member::Entity::belongs_to(chat::Entity)
        .from(chat_member::Column::ChatId)
        .to(chat::Column::Id)
        .into();
    member_to_chat.rev().on_condition(move |_chat, member| {
        Expr::col((member, chat_member::Column::UserId))
            .eq(user)
            .into_condition()
    })
}

/// Whether `viewer` may see the online state and last seen of `user`, whose setting is
/// `visibility` (`friend`: they are friends). One always sees oneself.
pub fn sees_presence(
    viewer: Uuid,
    user: Uuid,
    visibility: PresenceVisibility,
    friend: bool,
) -> bool {
    viewer == user
        || match visibility {
            PresenceVisibility::Everyone => true,
            PresenceVisibility::Friends => friend,
            PresenceVisibility::Nobody => false,
        }
}

/// Loads a message and checks `need` on its chat; unknown and unreadable look the same.
pub async fn message_access(
    app: &AppState,
    viewer: &Viewer,
    message_id: Uuid,
    need: Need,
) -> AppResult<(message::Model, ChatAccess)> {
    let hidden = || AppError::NotFound("message not found".into());
    let message = message::Entity::find_by_id(message_id)
        .one(&app.db)
        .await?
        .ok_or_else(hidden)?;
    let access = chat_access(app, viewer, message.chat_id, need)
        .await
        .map_err(|e| match e {
            AppError::NotFound(_) => hidden(),
            other => other,
        })?;
    Ok((message, access))
}
