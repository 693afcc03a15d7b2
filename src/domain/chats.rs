//! Direct chats and groups: opening, creating, settings, archive, and the chat list.
//! Membership changes live in `members`.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, JoinType, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait, Set,
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{self, ChatAccess, Need, Reach, chat_access, membership_of},
    autocommit, in_transaction, members,
    paging::fetch_page,
    users, validate,
};
use crate::{
    entity::{
        chat::{self, ChatKind},
        chat_member::{self, MemberRole},
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
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
    /// Rooms: whether any member may add tracks to the queue.
    pub anyone_can_enqueue: bool,
}

/// What `update` changes; omitted fields stay as they are.
pub struct ChatChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Rooms only.
    pub anyone_can_enqueue: Option<bool>,
}

/// Position in a chat list: (last activity, id), newest first.
pub type ChatCursor = (DateTime<Utc>, Uuid);

/// A page of chats.
pub struct ChatPage {
    pub chats: Vec<chat::Model>,
    pub has_next: bool,
    /// The caller's membership in each of `chats` (None where not a member), when the list read
    /// them with the page (`list` does; other lists don't).
    pub memberships: Option<Vec<Option<chat_member::Model>>>,
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
/// `a` (who asks) may not reach `b` while either blocked the other.
#[tracing::instrument(skip_all, fields(user = %a, other = %b))]
pub async fn direct_chat_between(app: &AppState, a: Uuid, b: Uuid) -> AppResult<chat::Model> {
    access::reach(&app.db, a, b, Reach::Message).await?;
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
    let created = in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let chat = chat.insert(txn).await.map_err(unique_to_conflict)?;
            for user in [a, b] {
                members::add_member(txn, outbox, chat.id, user, MemberRole::Member, now).await?;
            }
            Ok(chat)
        })
    })
    .await;
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
#[tracing::instrument(
    skip_all,
    fields(user = %viewer.user_id, ?kind, members = input.members.len())
)]
pub async fn create(
    app: &AppState,
    viewer: &Viewer,
    kind: ChatKind,
    input: NewChat,
) -> AppResult<chat::Model> {
    let name = required_name(&input.name)?;
    let description =
        validate::optional_text("description", input.description.as_deref(), DESCRIPTION_MAX)?;
    if !input.members.is_empty() {
        // Bringing people into a new group is inviting them, on the same budget as addMembers.
        app.limits.per_user(Action::Invite, viewer, 1).await?;
    }
    let mut members = users::resolve_identifiers(app, "members", &input.members).await?;
    // Whoever blocked the caller is left out, without a word.
    let ids: Vec<Uuid> = members.iter().map(|u| u.id).collect();
    let refusing = access::blocked_me(&app.db, viewer.user_id, &ids).await?;
    members.retain(|u| !refusing.contains(&u.id));
    let now = Utc::now();
    let is_private = kind != ChatKind::Room || input.is_private;
    let mut chat = new_chat(
        kind,
        Some(name),
        description,
        is_private,
        Some(viewer.user_id),
        now,
    );
    chat.anyone_can_enqueue = Set(kind == ChatKind::Room && input.anyone_can_enqueue);
    let owner = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let chat = chat.insert(txn).await?;
            members::add_member(txn, outbox, chat.id, owner, MemberRole::Owner, now).await?;
            let added: Vec<Uuid> = members
                .iter()
                .map(|u| u.id)
                .filter(|&id| id != owner)
                .collect();
            for &user in &added {
                members::add_member(txn, outbox, chat.id, user, MemberRole::Member, now).await?;
            }
            if kind == ChatKind::Group {
                members::added_to_group(txn, outbox, chat.id, added, owner).await?;
            }
            Ok(chat)
        })
    })
    .await
}

/// Renames or re-describes a group or room, or changes a room's settings (admins).
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat = %chat_id))]
pub async fn update(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    changes: ChatChanges,
) -> AppResult<chat::Model> {
    let access = chat_access(app, viewer, chat_id, Need::Admin).await?;
    not_direct(&access)?;
    let ChatChanges {
        name,
        description,
        anyone_can_enqueue,
    } = changes;
    if anyone_can_enqueue.is_some() && access.chat.kind != ChatKind::Room {
        return Err(AppError::bad_input(
            "anyoneCanEnqueue",
            "only rooms have a queue",
        ));
    }
    let mut model: chat::ActiveModel = access.chat.into();
    if let Some(open) = anyone_can_enqueue {
        model.anyone_can_enqueue = Set(open);
    }
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
    autocommit(app, |db, outbox| {
        Box::pin(async move {
            let chat = model.update(db).await?;
            outbox.record(Topic::Chat(chat_id), Event::ChatUpdated { chat_id });
            Ok(chat)
        })
    })
    .await
}

/// Sets the caller's archive flag on a chat.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat = %chat_id, archived))]
pub async fn set_archived(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    archived: bool,
) -> AppResult<chat::Model> {
    super::chat_settings::change(app, viewer, chat_id, |m| m.archived = Set(archived)).await
}

/// One chat the caller may read.
pub async fn get(app: &AppState, viewer: &Viewer, chat_id: Uuid) -> AppResult<chat::Model> {
    Ok(chat_access(app, viewer, chat_id, Need::Read).await?.chat)
}

/// The caller's chats (or, for staff with `all`, every chat), newest activity first, each with
/// the caller's membership, in one statement.
pub async fn list(
    app: &AppState,
    viewer: &Viewer,
    archived: bool,
    all: bool,
    first: u64,
    after: Option<ChatCursor>,
) -> AppResult<ChatPage> {
    check_page_size(first)?;
    if all && !viewer.is_staff {
        return Err(AppError::Forbidden("only staff may list every chat".into()));
    }
    let mut query = chat::Entity::find();
    if all {
        query = query.join(JoinType::LeftJoin, membership_of(viewer.user_id));
    } else {
        query = query
            .join(JoinType::InnerJoin, membership_of(viewer.user_id))
            .filter(chat_member::Column::Archived.eq(archived));
    }
    let rows = by_activity(query, after)
        .select_also(chat_member::Entity)
        .limit(first.saturating_add(1))
        .all(&app.db)
        .await?;
    let has_next = rows.len() as u64 > first;
    let (chats, memberships) = rows
        .into_iter()
        .take(usize::try_from(first).unwrap_or(usize::MAX))
        .unzip();
    Ok(ChatPage {
        chats,
        has_next,
        memberships: Some(memberships),
    })
}

/// `query` after `after`, newest activity first.
fn by_activity(
    mut query: sea_orm::Select<chat::Entity>,
    after: Option<ChatCursor>,
) -> sea_orm::Select<chat::Entity> {
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
    query
        .order_by_desc(chat::Column::LastActivityAt)
        .order_by_desc(chat::Column::Id)
}

/// A page of `query`'s chats, newest activity first, after `after`.
pub async fn page_by_activity(
    app: &AppState,
    query: sea_orm::Select<chat::Entity>,
    first: u64,
    after: Option<ChatCursor>,
) -> AppResult<ChatPage> {
    check_page_size(first)?;
    let (chats, has_next) = fetch_page(by_activity(query, after), first, &app.db).await?;
    Ok(ChatPage {
        chats,
        has_next,
        memberships: None,
    })
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
    validate::page_size("first", first as i64, PAGE_MAX).map(|_| ())
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
        anyone_can_enqueue: Set(false),
    }
}

/// A unique-index violation as a `CONFLICT` (callers that expect races handle it).
pub(super) fn unique_to_conflict(err: sea_orm::DbErr) -> AppError {
    match crate::db::unique_violation(&err) {
        Some(_) => AppError::Conflict {
            field: None,
            message: "already exists".into(),
        },
        None => AppError::from(err),
    }
}

fn required_name(name: &str) -> AppResult<String> {
    validate::optional_text("name", Some(name), NAME_MAX)?
        .ok_or_else(|| AppError::bad_input("name", "name must not be empty"))
}

pub(super) fn not_direct(access: &ChatAccess) -> AppResult<()> {
    if access.chat.kind == ChatKind::Direct {
        return Err(AppError::bad_input(
            "chatId",
            "not possible in a direct chat",
        ));
    }
    Ok(())
}
