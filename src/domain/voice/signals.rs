//! The relay of WebRTC signals (offers, answers, ICE candidates, goodbyes) between participants
//! of one room's voice. A signal is never stored: it is published on its addressee's own topic
//! (`Topic::Voice`), which Redis carries to whichever instance they are connected to, and only
//! their `voiceSignals` subscription for that room receives it. Payloads are opaque but bounded
//! in size and rate.
use std::sync::Arc;

use futures_util::{Stream, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use uuid::Uuid;

use super::room;
use crate::{
    domain::{Viewer, access::Need},
    entity::voice_participant,
    error::{AppError, AppResult},
    events::{Delivered, Event, SignalKind, Topic},
    limits::Action,
    state::AppState,
};

/// A signal as its addressee receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    pub room_id: Uuid,
    pub from: Uuid,
    pub kind: SignalKind,
    pub payload: String,
}

/// Relays a signal from the caller to `to`; both must hold a seat in the room's voice.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, room = %room_id, to = %to, ?kind))]
pub async fn send(
    app: &AppState,
    viewer: &Viewer,
    room_id: Uuid,
    to: Uuid,
    kind: SignalKind,
    payload: String,
) -> AppResult<()> {
    app.limits.per_user(Action::Signal, viewer, 1).await?;
    let max = app.config.voice.signal_max_bytes;
    if payload.len() > max {
        return Err(AppError::bad_input(
            "payload",
            format!("a signal's payload may be at most {max} bytes"),
        ));
    }
    let me = viewer.user_id;
    if to == me {
        return Err(AppError::bad_input(
            "toUserId",
            "a signal goes to another participant, not to yourself",
        ));
    }
    let seated: Vec<Uuid> = voice_participant::Entity::find()
        .select_only()
        .column(voice_participant::Column::UserId)
        .filter(voice_participant::Column::ChatId.eq(room_id))
        .filter(voice_participant::Column::UserId.is_in([me, to]))
        .into_tuple()
        .all(&app.db)
        .await?;
    if !seated.contains(&me) {
        // Not seated: refused as the room's access rules say (a stranger to a private room
        // learns nothing), else because a seat is needed.
        room(app, viewer, room_id, Need::Member).await?;
        return Err(AppError::Forbidden(
            "join this room's voice before sending signals".into(),
        ));
    }
    if !seated.contains(&to) {
        return Err(AppError::bad_input(
            "toUserId",
            "that user is not in this room's voice",
        ));
    }
    let signal = Event::VoiceSignal {
        chat_id: room_id,
        from: me,
        to,
        kind,
        payload,
    };
    app.bus.publish(Topic::Voice(to), signal).await;
    Ok(())
}

/// Whether the caller may listen for signals in the room: any member may (subscribing before
/// joining voice is how a client misses no offer).
pub async fn check_listener(app: &AppState, viewer: &Viewer, room_id: Uuid) -> AppResult<()> {
    room(app, viewer, room_id, Need::Member).await.map(|_| ())
}

/// The signals addressed to the receiver's user for one room. A subscriber that falls behind
/// loses the signals it missed (WebRTC recovers by renegotiating); nothing is replayed.
pub fn feed(
    receiver: broadcast::Receiver<Arc<Delivered>>,
    room_id: Uuid,
) -> impl Stream<Item = Signal> {
    BroadcastStream::new(receiver).filter_map(move |item| {
        let signal = match item.as_deref().map(|d| &d.event) {
            Ok(Event::VoiceSignal {
                chat_id,
                from,
                kind,
                payload,
                ..
            }) if *chat_id == room_id => Some(Signal {
                room_id,
                from: *from,
                kind: *kind,
                payload: payload.clone(),
            }),
            _ => None,
        };
        std::future::ready(signal)
    })
}
