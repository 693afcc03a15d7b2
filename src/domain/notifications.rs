//! Notifications, stored per user: a friend request and its acceptance, being added to a group,
//! a room invite, a mention, a reply. Each is written in the same transaction as what caused it and announced on
//! the user's topic (`NotificationCreated` in `myEvents`) once that commits. Nobody is notified
//! of their own doing, nor of anything done by someone they blocked. Each is also enqueued for
//! the user's browsers (`push`), in the same write.
use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::Expr,
};
use uuid::Uuid;

use super::{Outbox, Viewer, access, push};
use crate::{
    entity::notification::{self, NotificationKind},
    error::{AppError, AppResult},
    events::{Event, Topic},
    state::AppState,
};

/// Largest page of notifications.
pub const PAGE_MAX: u64 = 100;
/// Most ids one `markNotificationsRead` names.
pub const MARK_MAX: usize = 100;

/// Notifications of one kind to store, for each of `users`.
pub struct New {
    pub kind: NotificationKind,
    /// Who caused them.
    pub actor_id: Uuid,
    pub chat_id: Option<Uuid>,
    /// The message they are about (mentions and replies).
    pub message_id: Option<Uuid>,
    /// Who they are for.
    pub users: Vec<Uuid>,
}

/// Stores `new` in the caller's write, each announced to its user once that commits. The actor
/// is never notified, nor anyone who blocked them.
pub(super) async fn notify(
    db: &impl ConnectionTrait,
    outbox: &mut Outbox<'_>,
    mut new: New,
) -> AppResult<()> {
    new.users.retain(|&user| user != new.actor_id);
    let refusing = access::blocked_me(db, new.actor_id, &new.users).await?;
    new.users.retain(|user| !refusing.contains(user));
    store(db, outbox, new).await
}

/// Rows per INSERT: 8 values each, far below SQLite's 32,766 bound values.
const INSERT_ROWS: usize = 1_000;

/// `notify` for users already known not to have blocked the actor (nor to be the actor).
pub(super) async fn store(
    db: &impl ConnectionTrait,
    outbox: &mut Outbox<'_>,
    new: New,
) -> AppResult<()> {
    let now = Utc::now();
    let stored: Vec<notification::Model> = new
        .users
        .into_iter()
        .map(|user_id| notification::Model {
            id: Uuid::now_v7(),
            user_id,
            kind: new.kind,
            actor_id: Some(new.actor_id),
            chat_id: new.chat_id,
            message_id: new.message_id,
            created_at: now,
            read_at: None,
        })
        .collect();
    for rows in stored.chunks(INSERT_ROWS) {
        notification::Entity::insert_many(
            rows.iter().cloned().map(notification::ActiveModel::from),
        )
        .exec_without_returning(db)
        .await?;
    }
    push::enqueue(db, &stored).await?;
    for notification in stored {
        outbox.record(
            Topic::User(notification.user_id),
            Event::NotificationCreated { notification },
        );
    }
    Ok(())
}

/// A page of the caller's notifications, newest first, after notification `after`.
pub struct NotificationPage {
    pub notifications: Vec<notification::Model>,
    pub has_next: bool,
}

/// The caller's notifications (only the unread ones with `unread_only`), newest first.
pub async fn page(
    app: &AppState,
    viewer: &Viewer,
    first: u64,
    after: Option<Uuid>,
    unread_only: bool,
) -> AppResult<NotificationPage> {
    if !(1..=PAGE_MAX).contains(&first) {
        return Err(AppError::bad_input(
            "first",
            format!("first must be between 1 and {PAGE_MAX}"),
        ));
    }
    let mut query = mine(viewer.user_id, unread_only);
    if let Some(after) = after {
        query = query.filter(notification::Column::Id.lt(after));
    }
    let mut notifications = query
        .order_by_desc(notification::Column::Id)
        .limit(first + 1)
        .all(&app.db)
        .await?;
    let has_next = notifications.len() as u64 > first;
    notifications.truncate(first as usize);
    Ok(NotificationPage {
        notifications,
        has_next,
    })
}

fn mine(user: Uuid, unread_only: bool) -> sea_orm::Select<notification::Entity> {
    let query = notification::Entity::find().filter(notification::Column::UserId.eq(user));
    if unread_only {
        query.filter(notification::Column::ReadAt.is_null())
    } else {
        query
    }
}

/// How many notifications the user has (unread ones only with `unread_only`).
pub async fn count(app: &AppState, user: Uuid, unread_only: bool) -> AppResult<u64> {
    Ok(mine(user, unread_only).count(&app.db).await?)
}

/// Marks the caller's notifications read: those named (`ids`), or all. Returns how many were
/// unread. Ids that are not the caller's, or already read, are passed over.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id))]
pub async fn mark_read(app: &AppState, viewer: &Viewer, ids: Option<Vec<Uuid>>) -> AppResult<u64> {
    let mut update = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(Utc::now()))
        .filter(notification::Column::UserId.eq(viewer.user_id))
        .filter(notification::Column::ReadAt.is_null());
    if let Some(ids) = ids {
        if ids.len() > MARK_MAX {
            return Err(AppError::bad_input(
                "ids",
                format!("name at most {MARK_MAX} notifications (or none, for all)"),
            ));
        }
        update = update.filter(notification::Column::Id.is_in(ids));
    }
    Ok(update.exec(&app.db).await?.rows_affected)
}
