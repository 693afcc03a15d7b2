//! Voice operations: seats (`joinVoice`, `leaveVoice`, `setVoiceState`), room admins' controls
//! (`muteVoiceParticipant`, `removeFromVoice`), the signal relay (`sendSignal`, `voiceSignals`)
//! and `iceServers`. The rules are in `domain::voice`; this layer maps ids and types.
use async_graphql::{
    Context, ID, Object, Subscription,
    futures_util::{Stream, StreamExt},
};

use super::{
    context::ContextExt,
    types::{
        parse_id,
        voice::{IceServer, SignalKind, VoiceParticipant, VoiceSignal, VoiceStateInput},
    },
};
use crate::domain::{
    live::Subscriber,
    voice::{ice, moderation, seats, signals},
};

/// Voice queries.
#[derive(Default)]
pub struct VoiceQuery;

#[Object]
impl VoiceQuery {
    /// The STUN and TURN servers to hand to `RTCPeerConnection` (TURN credentials are made for
    /// the caller and expire; fetch again before joining voice).
    async fn ice_servers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<IceServer>> {
        let viewer = ctx.viewer()?;
        Ok(ice::servers(ctx.app(), viewer)
            .into_iter()
            .map(IceServer::from)
            .collect())
    }
}

/// Voice mutations.
#[derive(Default)]
pub struct VoiceMutation;

#[Object]
impl VoiceMutation {
    /// Takes a seat in a room's voice (room members; joining again returns the seat). Fails
    /// with VOICE_FULL when the room's voice has no free seat. Subscribe to `voiceSignals`
    /// first, then offer a connection to every other participant.
    async fn join_voice(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> async_graphql::Result<VoiceParticipant> {
        let room = parse_id("roomId", &room_id)?;
        let seat = seats::join(ctx.app(), ctx.viewer()?, room).await?;
        Ok(VoiceParticipant::new(seat))
    }

    /// Gives up my seat in a room's voice; false when I held none.
    async fn leave_voice(&self, ctx: &Context<'_>, room_id: ID) -> async_graphql::Result<bool> {
        let room = parse_id("roomId", &room_id)?;
        Ok(seats::leave(ctx.app(), ctx.viewer()?, room).await?)
    }

    /// Changes my state in a room's voice (omitted fields stay as they are).
    async fn set_voice_state(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        input: VoiceStateInput,
    ) -> async_graphql::Result<VoiceParticipant> {
        let room = parse_id("roomId", &room_id)?;
        let seat = seats::set_state(ctx.app(), ctx.viewer()?, room, input.into()).await?;
        Ok(VoiceParticipant::new(seat))
    }

    /// Mutes a participant for everyone, or lifts that (room admins; lifting leaves their own
    /// mute on). The owner cannot be muted by others; only the owner mutes an admin.
    async fn mute_voice_participant(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_id: ID,
        muted: bool,
    ) -> async_graphql::Result<VoiceParticipant> {
        let (room, user) = (parse_id("roomId", &room_id)?, parse_id("userId", &user_id)?);
        let seat = moderation::mute(ctx.app(), ctx.viewer()?, room, user, muted).await?;
        Ok(VoiceParticipant::new(seat))
    }

    /// Removes a participant from a room's voice (room admins); false when they held no seat.
    async fn remove_from_voice(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        let (room, user) = (parse_id("roomId", &room_id)?, parse_id("userId", &user_id)?);
        Ok(moderation::remove(ctx.app(), ctx.viewer()?, room, user).await?)
    }

    /// Relays a WebRTC signal to another participant of the room's voice (both must hold a
    /// seat); it reaches only their `voiceSignals` subscription and is not stored.
    async fn send_signal(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        to_user_id: ID,
        kind: SignalKind,
        #[graphql(secret)] payload: String,
    ) -> async_graphql::Result<bool> {
        let room = parse_id("roomId", &room_id)?;
        let to = parse_id("toUserId", &to_user_id)?;
        signals::send(ctx.app(), ctx.viewer()?, room, to, kind.into(), payload).await?;
        Ok(true)
    }
}

/// Voice subscriptions.
#[derive(Default)]
pub struct VoiceSubscription;

#[Subscription]
impl VoiceSubscription {
    /// The WebRTC signals other participants send me in one room's voice (room members; open it
    /// before `joinVoice` so no offer is missed).
    async fn voice_signals(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
    ) -> async_graphql::Result<impl Stream<Item = VoiceSignal> + use<>> {
        let viewer = *ctx.viewer()?;
        let room = parse_id("roomId", &room_id)?;
        let signals = Subscriber::start(ctx.app(), viewer)
            .await?
            .voice_signals(room)
            .await?;
        Ok(signals.map(VoiceSignal))
    }
}
