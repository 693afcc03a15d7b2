//! Web Push (RFC 8030): the signed-in user's browsers register their push subscriptions, and
//! every stored notification is enqueued for each of its user's subscriptions in the same write
//! that stores it (`enqueue`, called by `notifications::notify`), so a push is never lost to a
//! crash nor sent for a write that rolled back. The `worker` sends what is due; what an endpoint
//! and the keys may be is `endpoint`.
pub mod endpoint;
pub mod worker;

use std::collections::HashMap;

use chrono::{SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::OnConflict,
};
use serde::Serialize;
use uuid::Uuid;

use super::{Viewer, autocommit, in_transaction};
use crate::{
    entity::{
        notification::{self, NotificationKind},
        push_delivery, push_subscription,
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// The public key browsers pass to `pushManager.subscribe` (`applicationServerKey`).
pub fn vapid_public_key(app: &AppState) -> &str {
    app.vapid.public_key()
}

/// Registers (or, for an endpoint already known, renews and takes over) a push subscription of
/// the caller's browser. A user keeps at most `GOFTGU_PUSH_MAX_SUBSCRIPTIONS`: the least
/// recently registered beyond that are dropped. Pushes still waiting for the endpoint's previous
/// owner are dropped too: they are not the new owner's to see.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id))]
pub async fn register(
    app: &AppState,
    viewer: &Viewer,
    endpoint: &str,
    p256dh: &str,
    auth: &str,
) -> AppResult<push_subscription::Model> {
    let endpoint = endpoint::check(&app.config.push, endpoint)?;
    let (p256dh, _) = endpoint::p256dh(p256dh)?;
    let (auth, _) = endpoint::auth(auth)?;
    let me = viewer.user_id;
    let keep = app.config.push.max_subscriptions;
    in_transaction(app, |txn, _| {
        Box::pin(async move {
            let row = push_subscription::ActiveModel {
                id: Set(Uuid::now_v7()),
                user_id: Set(me),
                endpoint: Set(endpoint.to_string()),
                p256dh: Set(p256dh),
                auth: Set(auth),
                registered_at: Set(Utc::now()),
            };
            let saved = push_subscription::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(push_subscription::Column::Endpoint)
                        .update_columns([
                            push_subscription::Column::UserId,
                            push_subscription::Column::P256dh,
                            push_subscription::Column::Auth,
                            push_subscription::Column::RegisteredAt,
                        ])
                        .to_owned(),
                )
                .exec_with_returning(txn)
                .await?;
            push_delivery::Entity::delete_many()
                .filter(push_delivery::Column::SubscriptionId.eq(saved.id))
                .filter(push_delivery::Column::UserId.ne(me))
                .exec(txn)
                .await?;
            let beyond: Vec<Uuid> = push_subscription::Entity::find()
                .select_only()
                .column(push_subscription::Column::Id)
                .filter(push_subscription::Column::UserId.eq(me))
                .order_by_desc(push_subscription::Column::RegisteredAt)
                .order_by_desc(push_subscription::Column::Id)
                .offset(keep)
                .limit(1000)
                .into_tuple()
                .all(txn)
                .await?;
            if !beyond.is_empty() {
                push_subscription::Entity::delete_many()
                    .filter(push_subscription::Column::Id.is_in(beyond))
                    .exec(txn)
                    .await?;
            }
            Ok(saved)
        })
    })
    .await
}

/// Removes the caller's subscription with this endpoint (and what waits to be pushed to it);
/// whether there was one. Someone else's endpoint is left alone.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id))]
pub async fn unregister(app: &AppState, viewer: &Viewer, endpoint: &str) -> AppResult<bool> {
    if endpoint.len() > endpoint::ENDPOINT_MAX {
        return Err(AppError::bad_input(
            "endpoint",
            "no such endpoint is this long",
        ));
    }
    let me = viewer.user_id;
    let endpoint = endpoint.to_string();
    autocommit(app, |db, _| {
        Box::pin(async move {
            let removed = push_subscription::Entity::delete_many()
                .filter(push_subscription::Column::Endpoint.eq(endpoint))
                .filter(push_subscription::Column::UserId.eq(me))
                .exec(db)
                .await?;
            Ok(removed.rows_affected > 0)
        })
    })
    .await
}

/// The caller's subscriptions, most recently registered first.
pub async fn mine(app: &AppState, viewer: &Viewer) -> AppResult<Vec<push_subscription::Model>> {
    Ok(push_subscription::Entity::find()
        .filter(push_subscription::Column::UserId.eq(viewer.user_id))
        .order_by_desc(push_subscription::Column::RegisteredAt)
        .order_by_desc(push_subscription::Column::Id)
        .all(&app.db)
        .await?)
}

/// What a push carries (before encryption): enough for the service worker to show something and
/// fetch the rest with the user's token.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    id: Uuid,
    kind: NotificationKind,
    actor_id: Option<Uuid>,
    chat_id: Option<Uuid>,
    /// The message a mention or a reply is about.
    message_id: Option<Uuid>,
    created_at: chrono::DateTime<Utc>,
}

/// Enqueues a push of each stored notification to every subscription of its user, in the
/// caller's write. Whether the user is online is decided when it is sent.
pub(super) async fn enqueue(
    db: &impl ConnectionTrait,
    stored: &[notification::Model],
) -> AppResult<()> {
    let mut users: Vec<Uuid> = stored.iter().map(|n| n.user_id).collect();
    users.sort_unstable();
    users.dedup();
    let subscriptions: Vec<(Uuid, Uuid)> = push_subscription::Entity::find()
        .select_only()
        .column(push_subscription::Column::Id)
        .column(push_subscription::Column::UserId)
        .filter(push_subscription::Column::UserId.is_in(users))
        .into_tuple()
        .all(db)
        .await?;
    if subscriptions.is_empty() {
        return Ok(());
    }
    let mut by_user: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (id, user) in subscriptions {
        by_user.entry(user).or_default().push(id);
    }
    let now = Utc::now().timestamp_millis();
    let mut rows = Vec::new();
    for n in stored {
        let Some(targets) = by_user.get(&n.user_id) else {
            continue;
        };
        let payload = serde_json::to_string(&Payload {
            id: n.id,
            kind: n.kind,
            actor_id: n.actor_id,
            chat_id: n.chat_id,
            message_id: n.message_id,
            // At the precision the database keeps, so it equals what is read back.
            created_at: n.created_at.trunc_subsecs(6),
        })
        .map_err(|e| AppError::internal(e))?;
        for &subscription_id in targets {
            rows.push(push_delivery::ActiveModel {
                id: Set(Uuid::now_v7()),
                subscription_id: Set(subscription_id),
                user_id: Set(n.user_id),
                payload: Set(payload.clone()),
                attempts: Set(0),
                next_attempt_ms: Set(now),
            });
        }
    }
    // 6 values a row: chunks far below SQLite's 32,766 bound values (an `@all` in a big room
    // notifies thousands at once).
    for chunk in rows.chunks(1_000) {
        push_delivery::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}
