//! What room admins may do to others' seats: mute a participant for everyone (they cannot unmute
//! themselves until an admin lifts it) and remove one from voice. The owner is out of reach, and
//! only the owner may act on an admin, as with room membership.
use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use super::{free_seat, room, seat, seats::update_seat};
use crate::{
    domain::{
        Viewer,
        access::{ChatAccess, Need},
        autocommit,
    },
    entity::{
        chat_member::{self, MemberRole},
        voice_participant,
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// Mutes a participant for everyone (`muted`), or lifts that; lifting leaves their own mute on,
/// so nobody's microphone is opened by someone else.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id, target = %user_id, muted))]
pub async fn mute(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    user_id: Uuid,
    muted: bool,
) -> AppResult<voice_participant::Model> {
    let access = room(app, viewer, room_id, Need::Admin).await?;
    let target = seat(&app.db, room_id, user_id)
        .await?
        .ok_or_else(|| AppError::NotFound("that user is not in this room's voice".into()))?;
    may_act_on(app, viewer, &access, user_id, ("mute", "muted")).await?;
    if target.muted_by_admin == muted && (target.is_muted || !muted) {
        return Ok(target);
    }
    let mut model: voice_participant::ActiveModel = target.into();
    model.muted_by_admin = Set(muted);
    if muted {
        model.is_muted = Set(true);
    }
    update_seat(app, model).await
}

/// Removes a participant from the room's voice (they may join again; removing them from the
/// room keeps them out); false when they held no seat.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id, target = %user_id))]
pub async fn remove(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    user_id: Uuid,
) -> AppResult<bool> {
    let access = room(app, viewer, room_id, Need::Admin).await?;
    may_act_on(app, viewer, &access, user_id, ("remove", "removed")).await?;
    autocommit(app, |db, outbox| {
        Box::pin(async move { free_seat(db, outbox, room_id, user_id).await })
    })
    .await
}

/// Whether the admin behind `access` may act on `target`'s seat: their own always; never the
/// owner's; an admin's only as the owner.
async fn may_act_on(
    app: &AppState,
    viewer: &Viewer,
    access: &ChatAccess,
    target: Uuid,
    (verb, done): (&str, &str),
) -> AppResult<()> {
    if target == viewer.user_id {
        return Ok(());
    }
    let role = chat_member::Entity::find_by_id((access.chat.id, target))
        .one(&app.db)
        .await?
        .map(|m| m.role);
    match role {
        Some(MemberRole::Owner) => Err(AppError::Forbidden(format!(
            "the room's owner cannot be {done} by others"
        ))),
        Some(MemberRole::Admin) if access.role() != Some(MemberRole::Owner) => Err(
            AppError::Forbidden(format!("only the owner may {verb} an admin in voice")),
        ),
        _ => Ok(()),
    }
}
