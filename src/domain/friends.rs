//! Friends: asking, accepting, declining, cancelling and ending a friendship. A pair of people
//! has at most one row (`entity::friendship`), so the state machine is that row's life: none →
//! asked (by one of them) → friends → none. Someone who asks a person who already asked them
//! accepts that request, also when both ask at the same moment: the two inserts meet on the
//! pair's key and the second one finds the first request. Blocks are checked in `access`.
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Outbox, Viewer,
    access::{self, Reach},
    autocommit, in_transaction, notifications, privacy, users,
};
use crate::{
    entity::{
        friendship::{self, pair},
        notification::NotificationKind,
        user,
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// Where the caller stands with someone after asking or accepting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum FriendStatus {
    /// The caller asked; the other has not answered.
    RequestSent,
    /// Friends.
    Friends,
}

/// Asks `identifier` (username, email or id) to be friends. A request they sent first is
/// accepted instead; asking again, or asking a friend, changes nothing. Returns where the
/// caller stands afterwards.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id))]
pub async fn request(app: &AppState, viewer: &Viewer, identifier: &str) -> AppResult<FriendStatus> {
    app.limits.per_user(Action::Invite, viewer, 1).await?;
    let other = users::resolve_identifier(app, identifier).await?.id;
    let me = viewer.user_id;
    if other == me {
        return Err(AppError::bad_input(
            "identifier",
            "you cannot send yourself a friend request",
        ));
    }
    access::reach(&app.db, me, other, Reach::FriendRequest).await?;
    let (user_a, user_b) = pair(me, other);
    let (status, befriended) = in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let now = Utc::now();
            let asked = friendship::Entity::insert(friendship::ActiveModel {
                user_a: Set(user_a),
                user_b: Set(user_b),
                requested_by: Set(me),
                created_at: Set(now),
                accepted_at: Set(None),
            })
            .on_conflict(
                OnConflict::columns([friendship::Column::UserA, friendship::Column::UserB])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
            if asked == 1 {
                outbox.record(
                    Topic::User(other),
                    Event::FriendRequestReceived {
                        from: me,
                        to: other,
                    },
                );
                notify(txn, outbox, other, NotificationKind::FriendRequest, me).await?;
                return Ok((FriendStatus::RequestSent, false));
            }
            let row = friendship::Entity::find_by_id((user_a, user_b))
                .one(txn)
                .await?
                .ok_or_else(|| AppError::internal("friendship vanished after a conflict"))?;
            if row.accepted_at.is_some() {
                return Ok((FriendStatus::Friends, false));
            }
            if row.requested_by == me {
                return Ok((FriendStatus::RequestSent, false));
            }
            // They asked first: this request answers theirs.
            accept_row(txn, user_a, user_b, other, now).await?;
            accepted(txn, outbox, me, other).await?;
            Ok((FriendStatus::Friends, true))
        })
    })
    .await?;
    if befriended {
        privacy::friendship_changed(app, me, other, true).await;
    }
    Ok(status)
}

/// Marks the request `from` sent as accepted; whether there was one.
async fn accept_row(
    db: &impl sea_orm::ConnectionTrait,
    user_a: Uuid,
    user_b: Uuid,
    from: Uuid,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let accepted = friendship::Entity::update_many()
        .col_expr(
            friendship::Column::AcceptedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(the_pair(user_a, user_b))
        .filter(friendship::Column::RequestedBy.eq(from))
        .filter(friendship::Column::AcceptedAt.is_null())
        .exec(db)
        .await?;
    Ok(accepted.rows_affected == 1)
}

/// Accepts the request `from` sent; NOT_FOUND when there is none.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, from = %from))]
pub async fn accept(app: &AppState, viewer: &Viewer, from: Uuid) -> AppResult<FriendStatus> {
    let me = viewer.user_id;
    let (user_a, user_b) = pair(me, from);
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            if !accept_row(txn, user_a, user_b, from, Utc::now()).await? {
                return Err(no_request());
            }
            accepted(txn, outbox, me, from).await
        })
    })
    .await?;
    privacy::friendship_changed(app, me, from, true).await;
    Ok(FriendStatus::Friends)
}

/// `by` accepted the request of `to`: `to` is told, and notified.
async fn accepted(
    db: &impl sea_orm::ConnectionTrait,
    outbox: &mut Outbox<'_>,
    by: Uuid,
    to: Uuid,
) -> AppResult<()> {
    outbox.record(Topic::User(to), Event::FriendRequestAccepted { by, to });
    notify(db, outbox, to, NotificationKind::FriendAccepted, by).await
}

async fn notify(
    db: &impl sea_orm::ConnectionTrait,
    outbox: &mut Outbox<'_>,
    user_id: Uuid,
    kind: NotificationKind,
    actor_id: Uuid,
) -> AppResult<()> {
    let new = notifications::New {
        kind,
        actor_id,
        chat_id: None,
        message_id: None,
        users: vec![user_id],
    };
    notifications::notify(db, outbox, new).await
}

fn no_request() -> AppError {
    AppError::NotFound("no friend request from this user".into())
}

/// Declines the request `from` sent (they are not told); NOT_FOUND when there is none.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, from = %from))]
pub async fn decline(app: &AppState, viewer: &Viewer, from: Uuid) -> AppResult<()> {
    if !delete(app, viewer.user_id, from, from).await? {
        return Err(no_request());
    }
    Ok(())
}

/// Takes back the request the caller sent `to`; NOT_FOUND when there is none.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, to = %to))]
pub async fn cancel(app: &AppState, viewer: &Viewer, to: Uuid) -> AppResult<()> {
    if !delete(app, viewer.user_id, to, viewer.user_id).await? {
        return Err(AppError::NotFound("no friend request to this user".into()));
    }
    Ok(())
}

/// Ends a friendship (the other is told, as `FriendRemoved`); NOT_FOUND when not friends.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, friend = %friend))]
pub async fn remove(app: &AppState, viewer: &Viewer, friend: Uuid) -> AppResult<()> {
    let me = viewer.user_id;
    let (user_a, user_b) = pair(me, friend);
    autocommit(app, |db, outbox| {
        Box::pin(async move {
            let removed = friendship::Entity::delete_many()
                .filter(the_pair(user_a, user_b))
                .filter(friendship::Column::AcceptedAt.is_not_null())
                .exec(db)
                .await?;
            if removed.rows_affected == 0 {
                return Err(AppError::NotFound("this user is not your friend".into()));
            }
            outbox.record(
                Topic::User(friend),
                Event::FriendRemoved { by: me, to: friend },
            );
            Ok(())
        })
    })
    .await?;
    privacy::friendship_changed(app, me, friend, false).await;
    Ok(())
}

/// Deletes the pending request between `me` and `other` sent by `sender`; whether there was one.
async fn delete(app: &AppState, me: Uuid, other: Uuid, sender: Uuid) -> AppResult<bool> {
    let (user_a, user_b) = pair(me, other);
    let deleted = friendship::Entity::delete_many()
        .filter(the_pair(user_a, user_b))
        .filter(friendship::Column::AcceptedAt.is_null())
        .filter(friendship::Column::RequestedBy.eq(sender))
        .exec(&app.db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// The row of the pair (`user_a`, `user_b`), as `pair` orders them.
fn the_pair(user_a: Uuid, user_b: Uuid) -> Condition {
    Condition::all()
        .add(friendship::Column::UserA.eq(user_a))
        .add(friendship::Column::UserB.eq(user_b))
}

/// The caller's rows: friendships (`accepted`) or pending requests.
fn mine(me: Uuid) -> Condition {
    Condition::any()
        .add(friendship::Column::UserA.eq(me))
        .add(friendship::Column::UserB.eq(me))
}

/// The caller's friends, by username.
pub async fn friends(app: &AppState, viewer: &Viewer) -> AppResult<Vec<user::Model>> {
    let me = viewer.user_id;
    let rows = friendship::Entity::find()
        .filter(mine(me))
        .filter(friendship::Column::AcceptedAt.is_not_null())
        .all(&app.db)
        .await?;
    people(app, rows.iter().map(|r| r.other(me)).collect()).await
}

/// Which of `others` are friends of `me`, in one statement.
pub async fn among(
    db: &impl sea_orm::ConnectionTrait,
    me: Uuid,
    others: &[Uuid],
) -> AppResult<Vec<Uuid>> {
    if others.is_empty() {
        return Ok(Vec::new());
    }
    let rows = friendship::Entity::find()
        .filter(mine(me))
        .filter(
            Condition::any()
                .add(friendship::Column::UserA.is_in(others.iter().copied()))
                .add(friendship::Column::UserB.is_in(others.iter().copied())),
        )
        .filter(friendship::Column::AcceptedAt.is_not_null())
        .all(db)
        .await?;
    Ok(rows.iter().map(|r| r.other(me)).collect())
}

/// A pending request, with the other person.
pub struct Request {
    pub user: user::Model,
    pub created_at: DateTime<Utc>,
}

/// Pending requests sent to the caller (`incoming`) or by them, newest first.
pub async fn requests(app: &AppState, viewer: &Viewer, incoming: bool) -> AppResult<Vec<Request>> {
    let me = viewer.user_id;
    let sender = if incoming {
        friendship::Column::RequestedBy.ne(me)
    } else {
        friendship::Column::RequestedBy.eq(me)
    };
    let rows = friendship::Entity::find()
        .filter(mine(me))
        .filter(friendship::Column::AcceptedAt.is_null())
        .filter(sender)
        .order_by_desc(friendship::Column::CreatedAt)
        .all(&app.db)
        .await?;
    let people = people(app, rows.iter().map(|r| r.other(me)).collect()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let other = row.other(me);
            let user = people.iter().find(|u| u.id == other)?.clone();
            Some(Request {
                user,
                created_at: row.created_at,
            })
        })
        .collect())
}

/// Users by id, by username.
pub(super) async fn people(app: &AppState, ids: Vec<Uuid>) -> AppResult<Vec<user::Model>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::UsernameKey)
        .all(&app.db)
        .await?)
}

/// Forgets any friendship or request between two people (a block ends them); whether they
/// were friends.
pub(super) async fn sever(
    db: &impl sea_orm::ConnectionTrait,
    me: Uuid,
    other: Uuid,
) -> AppResult<bool> {
    let (user_a, user_b) = pair(me, other);
    let row = friendship::Entity::find_by_id((user_a, user_b))
        .one(db)
        .await?;
    let Some(row) = row else { return Ok(false) };
    friendship::Entity::delete_by_id((user_a, user_b))
        .exec(db)
        .await?;
    Ok(row.accepted_at.is_some())
}
