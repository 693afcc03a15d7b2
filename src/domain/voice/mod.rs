//! Voice in rooms: a mesh of WebRTC peers whose signalling goes through this server. Seats and
//! their state are stored so every instance agrees on who is in (`seats`); room admins mute and
//! remove participants (`moderation`); signals are relayed between seated participants and
//! never stored (`signals`); seats of people who have no live socket anywhere are freed after a
//! grace period (`grace`); clients get their STUN/TURN servers from `ice`.
pub mod grace;
pub mod ice;
pub mod moderation;
pub mod seats;
pub mod signals;

use sea_orm::{ConnectionTrait, EntityTrait};
use uuid::Uuid;

use super::{
    Outbox, Viewer,
    access::{self, ChatAccess, Need},
};
use crate::{
    entity::voice_participant,
    error::{AppError, AppResult},
    events::{Event, Topic},
    state::AppState,
};

/// The room a voice operation is about, with the caller's membership, once `need` is met; a
/// group or direct chat is refused (voice is for rooms).
async fn room(app: &AppState, viewer: &Viewer, room_id: Uuid, need: Need) -> AppResult<ChatAccess> {
    access::room_access(
        app,
        viewer,
        room_id,
        need,
        "voice is available in rooms only",
    )
    .await
}

/// `user`'s seat in the room's voice, if they hold one.
async fn seat<C: ConnectionTrait>(
    db: &C,
    room_id: Uuid,
    user: Uuid,
) -> AppResult<Option<voice_participant::Model>> {
    Ok(voice_participant::Entity::find_by_id((room_id, user))
        .one(db)
        .await?)
}

/// The refusal for someone who acts as a participant without a seat.
fn not_seated() -> AppError {
    AppError::Forbidden("join this room's voice first".into())
}

/// Frees `user`'s seat, if they hold one, and tells the room; returns whether there was one.
/// Only the caller whose delete removed the row records `VoiceLeft`, so concurrent removals
/// (two instances' sweeps, a leave racing a removal) announce it once.
pub(crate) async fn free_seat<C: ConnectionTrait>(
    db: &C,
    outbox: &mut Outbox<'_>,
    room_id: Uuid,
    user: Uuid,
) -> AppResult<bool> {
    let deleted = voice_participant::Entity::delete_by_id((room_id, user))
        .exec(db)
        .await?;
    if deleted.rows_affected == 0 {
        return Ok(false);
    }
    outbox.record(Topic::Chat(room_id), left(room_id, user));
    Ok(true)
}

fn left(chat_id: Uuid, user_id: Uuid) -> Event {
    Event::VoiceLeft { chat_id, user_id }
}
