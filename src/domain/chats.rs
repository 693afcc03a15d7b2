//! Direct chats and groups: opening, creating, membership management, archive, and the chat list.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set, SqlErr,
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{ChatAccess, Need, chat_access},
    in_transaction, users, validate,
};
use crate::{
    app::AppState,
    entity::{
        chat::{self, ChatKind},
        chat_member::{self, MemberRole},
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
};

/// Longest chat name.
pub const NAME_MAX: usize = 100;
/// Longest chat description.
pub const DESCRIPTION_MAX: usize = 1000;
/// Largest page of chats.
pub const PAGE_MAX: u64 = 100;

/// Input of `createGroup` / `createRoom`.
pub struct NewChat {
    pub name: String,
    pub description: Option<String>,
    pub members: Vec<String>,
    pub is_private: bool,
}

/// Position in a chat list: (last activity, id), newest first.
pub type ChatCursor = (DateTime<Utc>, Uuid);

/// A page of chats.
pub struct ChatPage {
    pub chats: Vec<chat::Model>,
    pub has_next: bool,
}

/// Opens (or returns the existing) direct chat with a user named by username, email or id.
pub async fn open_direct(
    app: &AppState,
    viewer: &Viewer,
    identifier: &str,
) -> AppResult<chat::Model> {
    let other = users::resolve_identifier(app, identifier).await?;
    if other.id == viewer.user_id {
        return Err(AppError::bad_input(
            "identifier",
            "you cannot open a chat with yourself",
        ));
    }
    direct_chat_between(app, viewer.user_id, other.id).await
}

/// The one direct chat of two users, created on first use (safe against concurrent creation).
pub async fn direct_chat_between(app: &AppState, a: Uuid, b: Uuid) -> AppResult<chat::Model> {
    let key = if a < b {
        format!("{a}:{b}")
    } else {
        format!("{b}:{a}")
    };
    let find = || chat::Entity::find().filter(chat::Column::DirectKey.eq(key.clone()));
    if let Some(chat) = find().one(&app.db).await? {
        return Ok(chat);
    }
    let now = Utc::now();
    let mut chat = new_chat(ChatKind::Direct, None, None, true, Some(a), now);
    chat.direct_key = Set(Some(key.clone()));
    let created = in_transaction(app, |txn| {
        Box::pin(async move {
            let chat = chat.insert(txn).await.map_err(unique_to_conflict)?;
            for user in [a, b] {
                add_member(txn, chat.id, user, MemberRole::Member, now).await?;
            }
            Ok(chat)
        })
    })
    .await;
    if let Ok(chat) = &created {
        announce_joined(app, chat.id, &[a, b]).await;
    }
    match created {
        // Lost a race with a concurrent open: the other request's chat is the one.
        Err(AppError::Conflict { .. }) => find()
            .one(&app.db)
            .await?
            .ok_or_else(|| AppError::internal("direct chat vanished after a conflicting insert")),
        other => other,
    }
}

/// Creates a group (or room) with the caller as owner; all named members must exist.
pub async fn create(
    app: &AppState,
    viewer: &Viewer,
    kind: ChatKind,
    input: NewChat,
) -> AppResult<chat::Model> {
    let name = required_name(&input.name)?;
    let description =
        validate::optional_text("description", input.description.as_deref(), DESCRIPTION_MAX)?;
    let members = users::resolve_identifiers(app, "members", &input.members).await?;
    let now = Utc::now();
    let is_private = kind != ChatKind::Room || input.is_private;
    let chat = new_chat(
        kind,
        Some(name),
        description,
        is_private,
        Some(viewer.user_id),
        now,
    );
    let owner = viewer.user_id;
    let member_ids: Vec<Uuid> = std::iter::once(owner)
        .chain(members.iter().map(|u| u.id).filter(|id| *id != owner))
        .collect();
    let chat = in_transaction(app, |txn| {
        Box::pin(async move {
            let chat = chat.insert(txn).await?;
            add_member(txn, chat.id, owner, MemberRole::Owner, now).await?;
            for user in members.iter().filter(|u| u.id != owner) {
                add_member(txn, chat.id, user.id, MemberRole::Member, now).await?;
            }
            Ok(chat)
        })
    })
    .await?;
    announce_joined(app, chat.id, &member_ids).await;
    Ok(chat)
}

/// Renames or re-describes a group or room (admins).
pub async fn update(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    name: Option<String>,
    description: Option<String>,
) -> AppResult<chat::Model> {
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    not_direct(&access)?;
    let mut model: chat::ActiveModel = access.chat.into();
    if let Some(name) = name {
        model.name = Set(Some(required_name(&name)?));
    }
    if let Some(description) = description {
        model.description = Set(validate::optional_text(
            "description",
            Some(&description),
            DESCRIPTION_MAX,
        )?);
    }
    let chat = model.update(&app.db).await?;
    let event = Event::ChatUpdated { chat_id };
    app.bus.publish(Topic::Chat(chat_id), event).await;
    Ok(chat)
}

/// Adds users to a group or room (admins); returns how many were not members before.
pub async fn add_members(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    identifiers: &[String],
) -> AppResult<u64> {
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

/// Sets the caller's archive flag on a chat.
pub async fn set_archived(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    archived: bool,
) -> AppResult<chat::Model> {
    let access = chat_access(app, viewer, chat_id, Need::Member).await?;
    if let Some(membership) = access.membership {
        let mut model: chat_member::ActiveModel = membership.into();
        model.archived = Set(archived);
        model.update(&app.db).await?;
    }
    Ok(access.chat)
}

/// One chat the caller may read.
pub async fn get(app: &AppState, viewer: &Viewer, chat_id: Uuid) -> AppResult<chat::Model> {
    Ok(chat_access(app, viewer, chat_id, Need::Read).await?.chat)
}

/// The caller's chats (or, for staff with `all`, every chat), newest activity first.
pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    archived: bool,
    all: bool,
    first: u64,
    after: Option<ChatCursor>,
) -> AppResult<ChatPage> {
    page_by_activity(app, list_query(viewer, archived, all)?, first, after).await
}

/// A page of `query`'s chats, newest activity first, after `after`.
pub async fn page_by_activity(
    app: &AppState,
    mut query: sea_orm::Select<chat::Entity>,
    first: u64,
    after: Option<ChatCursor>,
) -> AppResult<ChatPage> {
    check_page_size(first)?;
    if let Some((at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(chat::Column::LastActivityAt.lt(at))
                .add(
                    Condition::all()
                        .add(chat::Column::LastActivityAt.eq(at))
                        .add(chat::Column::Id.lt(id)),
                ),
        );
    }
    let mut chats = query
        .order_by_desc(chat::Column::LastActivityAt)
        .order_by_desc(chat::Column::Id)
        .limit(first + 1)
        .all(&app.db)
        .await?;
    let has_next = chats.len() as u64 > first;
    chats.truncate(first as usize);
    Ok(ChatPage { chats, has_next })
}

/// How many chats `list` would return in all.
pub async fn count(app: &AppState, viewer: &Viewer, archived: bool, all: bool) -> AppResult<u64> {
    Ok(list_query(viewer, archived, all)?.count(&app.db).await?)
}

fn list_query(
    viewer: &Viewer,
    archived: bool,
    all: bool,
) -> AppResult<sea_orm::Select<chat::Entity>> {
    if all {
        if !viewer.is_staff {
            return Err(AppError::Forbidden("only staff may list every chat".into()));
        }
        return Ok(chat::Entity::find());
    }
    Ok(chat::Entity::find()
        .join(JoinType::InnerJoin, chat::Relation::Member.def())
        .filter(chat_member::Column::UserId.eq(viewer.user_id))
        .filter(chat_member::Column::Archived.eq(archived)))
}

/// Refuses page sizes outside 1..=PAGE_MAX.
pub fn check_page_size(first: u64) -> AppResult<()> {
    if first == 0 || first > PAGE_MAX {
        return Err(AppError::bad_input(
            "first",
            format!("first must be between 1 and {PAGE_MAX}"),
        ));
    }
    Ok(())
}

/// A fresh chat row.
pub fn new_chat(
    kind: ChatKind,
    name: Option<String>,
    description: Option<String>,
    is_private: bool,
    created_by: Option<Uuid>,
    now: DateTime<Utc>,
) -> chat::ActiveModel {
    chat::ActiveModel {
        id: Set(Uuid::now_v7()),
        kind: Set(kind),
        name: Set(name),
        description: Set(description),
        image_url: Set(None),
        is_private: Set(is_private),
        direct_key: Set(None),
        created_by: Set(created_by),
        last_seq: Set(0),
        last_message_id: Set(None),
        created_at: Set(now),
        last_activity_at: Set(now),
    }
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

/// A unique-index violation as a `CONFLICT` (callers that expect races handle it).
fn unique_to_conflict(err: sea_orm::DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict {
            field: None,
            message: "already exists".into(),
        },
        _ => AppError::from(err),
    }
}

async fn member(app: &AppState, chat_id: Uuid, user_id: Uuid) -> AppResult<chat_member::Model> {
    chat_member::Entity::find_by_id((chat_id, user_id))
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound("member not found".into()))
}

fn required_name(name: &str) -> AppResult<String> {
    validate::optional_text("name", Some(name), NAME_MAX)?
        .ok_or_else(|| AppError::bad_input("name", "name must not be empty"))
}

fn not_direct(access: &ChatAccess) -> AppResult<()> {
    if access.chat.kind == ChatKind::Direct {
        return Err(AppError::bad_input(
            "chatId",
            "not possible in a direct chat",
        ));
    }
    Ok(())
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
