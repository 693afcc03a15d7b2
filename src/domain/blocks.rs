//! Blocking: someone blocked can no longer open or write to a direct chat with the blocker,
//! send them friend requests, or bring them into a group or room (`access::reach`,
//! `access::blocked_me`). A block also ends any friendship or request between the two, and
//! withdraws the blocked person's invitations to rooms. The
//! blocked person is never told; they meet neutral refusals only.
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::OnConflict};
use uuid::Uuid;

use super::{Viewer, friends, in_transaction, privacy, users};
use crate::{
    entity::{block, chat_invite, user},
    error::{AppError, AppResult},
    events::{Event, Topic},
    state::AppState,
};

/// Blocks a user (again: nothing changes).
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, blocked = %other))]
pub async fn block(app: &AppState, viewer: &Viewer, other: Uuid) -> AppResult<()> {
    let me = viewer.user_id;
    if other == me {
        return Err(AppError::bad_input("userId", "you cannot block yourself"));
    }
    users::get(app, viewer, other).await?;
    let severed = in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            block::Entity::insert(block::ActiveModel {
                blocker_id: Set(me),
                blocked_id: Set(other),
                created_at: Set(Utc::now()),
            })
            .on_conflict(
                OnConflict::columns([block::Column::BlockerId, block::Column::BlockedId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            // Their invitations to the blocker's rooms are withdrawn.
            chat_invite::Entity::delete_many()
                .filter(chat_invite::Column::UserId.eq(me))
                .filter(chat_invite::Column::InvitedBy.eq(other))
                .exec(txn)
                .await?;
            let severed = friends::sever(txn, me, other).await?;
            if severed {
                // As when a friend removes them: nothing says why.
                outbox.record(
                    Topic::User(other),
                    Event::FriendRemoved { by: me, to: other },
                );
            }
            Ok(severed)
        })
    })
    .await?;
    if severed {
        privacy::friendship_changed(app, me, other, false).await;
    }
    Ok(())
}

/// Lifts a block; whether there was one.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, blocked = %other))]
pub async fn unblock(app: &AppState, viewer: &Viewer, other: Uuid) -> AppResult<bool> {
    let removed = block::Entity::delete_by_id((viewer.user_id, other))
        .exec(&app.db)
        .await?;
    Ok(removed.rows_affected == 1)
}

/// The users the caller blocked, most recent first.
pub async fn blocked(app: &AppState, viewer: &Viewer) -> AppResult<Vec<user::Model>> {
    let rows = block::Entity::find()
        .filter(block::Column::BlockerId.eq(viewer.user_id))
        .order_by_desc(block::Column::CreatedAt)
        .all(&app.db)
        .await?;
    let mut people = friends::people(app, rows.iter().map(|r| r.blocked_id).collect()).await?;
    let order = |id: Uuid| rows.iter().position(|r| r.blocked_id == id);
    people.sort_by_key(|u| order(u.id));
    Ok(people)
}
