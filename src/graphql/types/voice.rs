//! Voice types: a participant's seat and state, the ICE servers a client connects through, and
//! a relayed WebRTC signal.
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{User, event::load_user};
use crate::{
    domain::voice::{ice, seats::VoiceState, signals::Signal},
    entity::voice_participant,
    graphql::loaders::Source,
};

/// What a WebRTC signal carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
#[graphql(remote = "crate::events::SignalKind")]
pub enum SignalKind {
    /// An SDP offer.
    Offer,
    /// An SDP answer.
    Answer,
    /// One ICE candidate (or the end of candidates).
    IceCandidate,
    /// The sender hangs up on the addressee.
    Bye,
}

/// A seat in a room's voice, and where its holder is loaded from.
pub struct VoiceParticipant(pub voice_participant::Model, pub Source);

impl VoiceParticipant {
    /// A seat read in this request.
    pub fn new(model: voice_participant::Model) -> Self {
        Self(model, Source::default())
    }
}

/// Someone in a room's voice, with their state.
#[Object]
impl VoiceParticipant {
    /// Who.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.1, self.0.user_id).await
    }

    /// Whether their microphone is off (their own choice, or a room admin's).
    async fn is_muted(&self) -> bool {
        self.0.is_muted
    }

    /// Whether they hear nothing.
    async fn is_deafened(&self) -> bool {
        self.0.is_deafened
    }

    /// Whether they are speaking now (as their client reports it).
    async fn is_speaking(&self) -> bool {
        self.0.is_speaking
    }

    /// Whether they raised their hand.
    async fn hand_raised(&self) -> bool {
        self.0.hand_raised
    }

    /// Whether a room admin muted them for everyone (they cannot unmute until it is lifted).
    async fn muted_by_admin(&self) -> bool {
        self.0.muted_by_admin
    }

    /// When they took the seat.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}

/// Input of `setVoiceState`; omitted fields stay as they are.
#[derive(InputObject)]
pub struct VoiceStateInput {
    /// Microphone off (unmuting is refused while a room admin keeps you muted).
    pub is_muted: Option<bool>,
    /// Hear nothing.
    pub is_deafened: Option<bool>,
    /// Speaking now.
    pub is_speaking: Option<bool>,
    /// Hand raised.
    pub hand_raised: Option<bool>,
}

impl From<VoiceStateInput> for VoiceState {
    fn from(input: VoiceStateInput) -> Self {
        Self {
            is_muted: input.is_muted,
            is_deafened: input.is_deafened,
            is_speaking: input.is_speaking,
            hand_raised: input.hand_raised,
        }
    }
}

/// One entry of `RTCConfiguration.iceServers`: STUN servers have no credentials; TURN servers
/// carry a username and credential valid for a limited time (fetch again before they expire).
#[derive(SimpleObject)]
pub struct IceServer {
    /// `stun:` or `turn:`/`turns:` URLs.
    pub urls: Vec<String>,
    /// The TURN username (`<unix expiry>:<user id>`).
    pub username: Option<String>,
    /// The TURN credential.
    pub credential: Option<String>,
}

impl From<ice::IceServer> for IceServer {
    fn from(server: ice::IceServer) -> Self {
        Self {
            urls: server.urls,
            username: server.username,
            credential: server.credential,
        }
    }
}

/// A WebRTC signal addressed to me.
pub struct VoiceSignal(pub Signal);

/// A WebRTC signal another participant of the room's voice sent me.
#[Object]
impl VoiceSignal {
    /// The room.
    async fn room_id(&self) -> ID {
        ID(self.0.room_id.to_string())
    }

    /// Who sent it.
    async fn from(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &Source::default(), self.0.from).await
    }

    /// Who sent it (the id alone, to answer without loading the user).
    async fn from_user_id(&self) -> ID {
        ID(self.0.from.to_string())
    }

    /// What it carries.
    async fn kind(&self) -> SignalKind {
        self.0.kind.into()
    }

    /// The payload as the sender gave it (SDP or an ICE candidate, opaque to the server).
    async fn payload(&self) -> &str {
        &self.0.payload
    }
}
