//! Taking, keeping and giving up a seat in a room's voice, and a participant's own state. A seat
//! needs room membership; the number of seats per room is capped (a mesh does not scale past a
//! handful), and the cap holds under concurrent joins on any number of instances.
use chrono::{SubsecRound, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
    Set, sea_query::LockType,
};
use uuid::Uuid;

use super::{free_seat, not_seated, room, seat};
use crate::{
    domain::{Viewer, access::Need, autocommit, chats::unique_to_conflict, in_transaction},
    entity::{chat, voice_participant},
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// The state a participant sets for themselves; `None` leaves a flag as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct VoiceState {
    pub is_muted: Option<bool>,
    pub is_deafened: Option<bool>,
    pub is_speaking: Option<bool>,
    pub hand_raised: Option<bool>,
}

/// Takes a seat in the room's voice (members only), or returns the seat already held. A member
/// muted in the room joins muted by an admin. A seat taken with no live socket anywhere counts
/// as away from the start: it lasts the grace period unless a socket opens (see `grace`).
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id))]
pub async fn join(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
) -> AppResult<voice_participant::Model> {
    let me = viewer.user_id;
    let access = room(app, viewer, room_id, Need::Member).await?;
    if let Some(seat) = seat(&app.db, room_id, me).await? {
        return Ok(seat);
    }
    let muted = access.membership.is_some_and(|m| m.muted);
    let now = Utc::now().trunc_subsecs(6);
    let online = app.presence.online(&[me]).await.contains(&me);
    let cap = u64::from(app.config.voice.max_participants);
    let joined = in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            // The row first: on SQLite the insert takes the database's write lock, so the count
            // below sees every seat taken before it.
            let seat = voice_participant::ActiveModel {
                chat_id: Set(room_id),
                user_id: Set(me),
                is_muted: Set(muted),
                is_deafened: Set(false),
                is_speaking: Set(false),
                hand_raised: Set(false),
                muted_by_admin: Set(muted),
                joined_at: Set(now),
                away_since: Set((!online).then_some(now)),
            }
            .insert(txn)
            .await
            .map_err(unique_to_conflict)?;
            // On PostgreSQL, joins of one room queue here (NO KEY UPDATE does not conflict with
            // the key-share lock the insert's foreign key took), so each count below sees the
            // seats committed before it; one join too many rolls back.
            chat::Entity::find_by_id(room_id)
                .lock(LockType::NoKeyUpdate)
                .one(txn)
                .await?;
            let seated = voice_participant::Entity::find()
                .filter(voice_participant::Column::ChatId.eq(room_id))
                .count(txn)
                .await?;
            if seated > cap {
                return Err(AppError::VoiceFull(format!(
                    "this room's voice is full ({cap} participants)"
                )));
            }
            outbox.record(
                Topic::Chat(room_id),
                Event::VoiceJoined {
                    participant: seat.clone(),
                },
            );
            Ok(seat)
        })
    })
    .await;
    match joined {
        // The same user joined at the same moment (another tab): that seat is theirs.
        Err(AppError::Conflict { .. }) => seat(&app.db, room_id, me).await?.ok_or_else(not_seated),
        other => other,
    }
}

/// Gives up the caller's seat; false when they held none.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id))]
pub async fn leave(app: &AppState, viewer: &Viewer, room_id: Uuid) -> AppResult<bool> {
    room(app, viewer, room_id, Need::Read).await?;
    let me = viewer.user_id;
    autocommit(app, |db, outbox| {
        Box::pin(async move { free_seat(db, outbox, room_id, me).await })
    })
    .await
}

/// Changes the caller's own state in the room's voice. Unmuting is refused while a room admin
/// keeps them muted.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id))]
pub async fn set_state(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    state: VoiceState,
) -> AppResult<voice_participant::Model> {
    app.limits.per_user(Action::Signal, viewer, 1).await?;
    room(app, viewer, room_id, Need::Member).await?;
    let seat = seat(&app.db, room_id, viewer.user_id)
        .await?
        .ok_or_else(not_seated)?;
    if state.is_muted == Some(false) && seat.muted_by_admin {
        return Err(AppError::Forbidden(
            "a room admin muted you in voice; only an admin can lift it".into(),
        ));
    }
    let mut model: voice_participant::ActiveModel = seat.clone().into();
    let mut changed = false;
    let mut apply =
        |wanted: Option<bool>, current: bool, field: &mut sea_orm::ActiveValue<bool>| {
            if let Some(value) = wanted.filter(|v| *v != current) {
                *field = Set(value);
                changed = true;
            }
        };
    apply(state.is_muted, seat.is_muted, &mut model.is_muted);
    apply(state.is_deafened, seat.is_deafened, &mut model.is_deafened);
    apply(state.is_speaking, seat.is_speaking, &mut model.is_speaking);
    apply(state.hand_raised, seat.hand_raised, &mut model.hand_raised);
    if !changed {
        return Ok(seat);
    }
    update_seat(app, model).await
}

/// Writes a changed seat and tells the room; a seat freed meanwhile is `not_seated`.
pub(super) async fn update_seat(
    app: &AppState,
    model: voice_participant::ActiveModel,
) -> AppResult<voice_participant::Model> {
    autocommit(app, |db, outbox| {
        Box::pin(async move {
            let seat = model.update(db).await.map_err(|e| match e {
                DbErr::RecordNotUpdated => not_seated(),
                other => other.into(),
            })?;
            outbox.record(
                Topic::Chat(seat.chat_id),
                Event::VoiceStateChanged {
                    participant: seat.clone(),
                },
            );
            Ok(seat)
        })
    })
    .await
}
