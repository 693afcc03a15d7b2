//! What subscribers receive: one union, `ChatEvent`, for `chatEvents` and `myEvents`. Events carry
//! ids (or the message itself); users and chats are loaded when the event is delivered.
use std::sync::Arc;

use async_graphql::{Context, ID, Object, SimpleObject, Union};
use uuid::Uuid;

use super::{
    Chat, Message, Playback, QueueEntry, User,
    chat::load_chat,
    cursor,
    pin_events::{LinkPreviewReady, MessagePinned, MessageUnpinned},
    poll::PollUpdated,
    voice::VoiceParticipant,
};
use crate::{
    domain::live::Gap,
    entity::chat_member::MemberRole,
    error::AppError,
    events::{Delivered, Event, PlaybackReason},
    graphql::{
        loaders::{QueueOf, Source, UserId},
        notifications::Notification,
    },
};

/// Something that happened in a chat, or to me.
#[derive(Union)]
pub enum ChatEvent {
    MessageCreated(MessageCreated),
    MessageEdited(MessageEdited),
    MessageDeleted(MessageDeleted),
    ReactionChanged(ReactionChanged),
    MessagePinned(MessagePinned),
    MessageUnpinned(MessageUnpinned),
    PollUpdated(PollUpdated),
    LinkPreviewReady(LinkPreviewReady),
    ReadStatusChanged(ReadStatusChanged),
    TypingChanged(TypingChanged),
    MemberJoined(MemberJoined),
    MemberLeft(MemberLeft),
    MemberRoleChanged(MemberRoleChanged),
    ChatUpdated(ChatUpdated),
    AddedToChat(AddedToChat),
    RemovedFromChat(RemovedFromChat),
    PlaybackChanged(PlaybackChanged),
    ResyncRequired(ResyncRequired),
    VoiceJoined(VoiceJoined),
    VoiceLeft(VoiceLeft),
    VoiceStateChanged(VoiceStateChanged),
    FriendRequestReceived(FriendRequestReceived),
    FriendRequestAccepted(FriendRequestAccepted),
    FriendRemoved(FriendRemoved),
    NotificationCreated(NotificationCreated),
}

impl ChatEvent {
    /// The GraphQL form of a bus event (presence has its own subscription). What subscribers
    /// load to render it comes from the loader shared by all of them (`Source::event`).
    pub fn from_delivered(delivered: &Arc<Delivered>) -> Option<Self> {
        let source = Source::event(delivered);
        Some(match delivered.event.clone() {
            Event::MessageCreated { message } => Self::MessageCreated(MessageCreated {
                cursor: cursor::message(message.seq),
                message: Message(message, source),
            }),
            Event::MessageEdited { message } => Self::MessageEdited(MessageEdited {
                cursor: cursor::message(message.seq),
                message: Message(message, source),
            }),
            Event::MessageDeleted {
                chat_id,
                message_id,
            } => Self::MessageDeleted(MessageDeleted {
                chat_id: ID(chat_id.to_string()),
                message_id: ID(message_id.to_string()),
            }),
            Event::ReactionChanged { message } => Self::ReactionChanged(ReactionChanged {
                message: Message(message, source),
            }),
            Event::MessagePinned { message, by } => Self::MessagePinned(MessagePinned {
                message: Message(message, source.clone()),
                by,
                source,
            }),
            Event::LinkPreviewReady {
                chat_id,
                message_id,
            } => Self::LinkPreviewReady(LinkPreviewReady {
                chat_id,
                message_id,
                source: source.clone(),
            }),
            Event::PollUpdated { chat_id, poll_id } => Self::PollUpdated(PollUpdated {
                chat_id,
                poll_id,
                source,
            }),
            Event::MessageUnpinned {
                chat_id,
                message_id,
                by,
            } => Self::MessageUnpinned(MessageUnpinned {
                chat_id,
                message_id,
                by,
                source,
            }),
            Event::ReadStatusChanged {
                chat_id,
                user_id,
                last_read_seq,
            } => Self::ReadStatusChanged(ReadStatusChanged {
                chat_id,
                user_id,
                last_read_seq,
                source,
            }),
            Event::TypingChanged {
                chat_id,
                user_id,
                is_typing,
            } => Self::TypingChanged(TypingChanged {
                chat_id,
                user_id,
                is_typing,
                source,
            }),
            Event::MemberJoined { chat_id, user_id } => Self::MemberJoined(MemberJoined {
                chat_id,
                user_id,
                source,
            }),
            Event::MemberLeft { chat_id, user_id } => Self::MemberLeft(MemberLeft {
                chat_id,
                user_id,
                source,
            }),
            Event::MemberRoleChanged {
                chat_id,
                user_id,
                role,
            } => Self::MemberRoleChanged(MemberRoleChanged {
                chat_id,
                user_id,
                role,
                source,
            }),
            Event::ChatUpdated { chat_id } => Self::ChatUpdated(ChatUpdated { chat_id }),
            Event::AddedToChat { chat_id, .. } => Self::AddedToChat(AddedToChat { chat_id }),
            Event::RemovedFromChat { chat_id, .. } => Self::RemovedFromChat(RemovedFromChat {
                chat_id: ID(chat_id.to_string()),
            }),
            Event::PlaybackChanged {
                chat_id,
                playback,
                reason,
                ..
            } => Self::PlaybackChanged(PlaybackChanged {
                chat_id,
                playback,
                reason,
                source,
            }),
            Event::VoiceJoined { participant } => Self::VoiceJoined(VoiceJoined {
                participant: VoiceParticipant(participant, source),
            }),
            Event::VoiceLeft { chat_id, user_id } => Self::VoiceLeft(VoiceLeft {
                chat_id,
                user_id,
                source,
            }),
            Event::VoiceStateChanged { participant } => {
                Self::VoiceStateChanged(VoiceStateChanged {
                    participant: VoiceParticipant(participant, source),
                })
            }
            Event::FriendRequestReceived { from, .. } => {
                Self::FriendRequestReceived(FriendRequestReceived {
                    user_id: from,
                    source,
                })
            }
            Event::FriendRequestAccepted { by, .. } => {
                Self::FriendRequestAccepted(FriendRequestAccepted {
                    user_id: by,
                    source,
                })
            }
            Event::FriendRemoved { by, .. } => Self::FriendRemoved(FriendRemoved {
                user_id: ID(by.to_string()),
            }),
            Event::NotificationCreated { notification } => {
                Self::NotificationCreated(NotificationCreated {
                    notification: Notification(notification, source),
                })
            }
            Event::PresenceChanged { .. }
            | Event::FriendshipChanged { .. }
            | Event::SessionsRevoked { .. }
            | Event::VoiceSignal { .. }
            | Event::LinkRestored => return None,
        })
    }

    /// The notice sent where events were lost that the subscription could not replay.
    pub fn resync(missed: u64, gap: Gap, chat_id: Option<Uuid>) -> Self {
        let reason = match gap {
            Gap::Others => {
                "events other than new messages may have been lost (the subscription fell behind or the link between servers was interrupted); the missed messages were delivered in order before this notice; re-fetch what else you show (reactions, read markers, members, edits and deletions, typing)"
            }
            Gap::Messages => {
                "messages were lost and not filled in (too many, or the database was unavailable); re-fetch with messages(after: <last cursor>) and everything else you show"
            }
        };
        Self::ResyncRequired(ResyncRequired {
            chat_id: chat_id.map(|id| ID(id.to_string())),
            missed,
            reason: reason.into(),
        })
    }
}

pub(super) async fn load_user(
    ctx: &Context<'_>,
    source: &Source,
    id: Uuid,
) -> async_graphql::Result<User> {
    source
        .loader(ctx)
        .load_one(UserId(id))
        .await?
        .map(User::new)
        .ok_or_else(|| AppError::NotFound("user not found".into()).into())
}

/// A new message (live, or filled in from history after a gap: either way each message once, in
/// order).
#[derive(SimpleObject)]
pub struct MessageCreated {
    /// The message.
    pub message: Message,
    /// The message's position, the same cursor a `messages` page gives it: keep the last one
    /// received and resume with `messages(after:)`.
    pub cursor: String,
}

/// A message's text changed.
#[derive(SimpleObject)]
pub struct MessageEdited {
    /// The message as it is now.
    pub message: Message,
    /// The message's position (as in `messages` pages).
    pub cursor: String,
}

/// A message was deleted.
#[derive(SimpleObject)]
pub struct MessageDeleted {
    /// The chat.
    pub chat_id: ID,
    /// The deleted message.
    pub message_id: ID,
}

/// Someone added or removed a reaction.
#[derive(SimpleObject)]
pub struct ReactionChanged {
    /// The message with its reactions as they are now.
    pub message: Message,
}

/// A member's read marker moved.
pub struct ReadStatusChanged {
    chat_id: Uuid,
    user_id: Uuid,
    last_read_seq: i64,
    source: Source,
}

/// A member read messages up to a point.
#[Object]
impl ReadStatusChanged {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// Who read.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }

    /// Cursor of the newest message they have read; everything up to it is read by them.
    async fn last_read_cursor(&self) -> String {
        cursor::message(self.last_read_seq)
    }
}

/// Someone started or stopped typing.
pub struct TypingChanged {
    chat_id: Uuid,
    user_id: Uuid,
    is_typing: bool,
    source: Source,
}

/// Someone started or stopped typing (it stops by itself about 6 s after the last refresh).
#[Object]
impl TypingChanged {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// Who.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }

    /// Whether they are typing now.
    async fn is_typing(&self) -> bool {
        self.is_typing
    }
}

/// Someone joined.
pub struct MemberJoined {
    chat_id: Uuid,
    user_id: Uuid,
    source: Source,
}

/// Someone joined the chat (or was added).
#[Object]
impl MemberJoined {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// Who joined.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }
}

/// Someone left.
pub struct MemberLeft {
    chat_id: Uuid,
    user_id: Uuid,
    source: Source,
}

/// Someone left the chat (or was removed). When it is you, the subscription ends after this.
#[Object]
impl MemberLeft {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// Who left.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }
}

/// A member's role changed.
pub struct MemberRoleChanged {
    chat_id: Uuid,
    user_id: Uuid,
    role: MemberRole,
    source: Source,
}

/// A member became admin, member again, or owner.
#[Object]
impl MemberRoleChanged {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// Whose role changed.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }

    /// The new role.
    async fn role(&self) -> MemberRole {
        self.role
    }
}

/// A chat's settings changed.
pub struct ChatUpdated {
    chat_id: Uuid,
}

/// A chat's name, description or image changed.
#[Object]
impl ChatUpdated {
    /// The chat as it is now.
    async fn chat(&self, ctx: &Context<'_>) -> async_graphql::Result<Chat> {
        load_chat(ctx, self.chat_id).await
    }
}

/// I was added to a chat.
pub struct AddedToChat {
    chat_id: Uuid,
}

/// I was added to a chat (or created or joined one): add it to the chat list.
#[Object]
impl AddedToChat {
    /// The chat.
    async fn chat(&self, ctx: &Context<'_>) -> async_graphql::Result<Chat> {
        load_chat(ctx, self.chat_id).await
    }
}

/// Someone asked me to be friends.
pub struct FriendRequestReceived {
    user_id: Uuid,
    source: Source,
}

/// Someone asked me to be friends: add them to the incoming requests.
#[Object]
impl FriendRequestReceived {
    /// Who asked.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }
}

/// Someone accepted my friend request.
pub struct FriendRequestAccepted {
    user_id: Uuid,
    source: Source,
}

/// Someone accepted my friend request: they are my friend now.
#[Object]
impl FriendRequestAccepted {
    /// My new friend.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }
}

/// A friend removed me from their friends: drop them from my friends.
#[derive(SimpleObject)]
pub struct FriendRemoved {
    /// The former friend.
    pub user_id: ID,
}

/// A notification was stored for me: add it to the list and count it unread.
#[derive(SimpleObject)]
pub struct NotificationCreated {
    /// The notification.
    pub notification: Notification,
}

/// I am no longer in a chat (left or removed): drop it from the chat list.
#[derive(SimpleObject)]
pub struct RemovedFromChat {
    /// The chat.
    pub chat_id: ID,
}

/// Events were lost that the subscription cannot replay: re-fetch what you show (`reason` says
/// what). Missed messages are filled in by the subscription itself, before this notice, unless
/// the reason says otherwise.
#[derive(SimpleObject)]
pub struct ResyncRequired {
    /// The chat whose events were lost; null when they may concern every chat this
    /// subscription follows (`myEvents` after a lag or an interrupted link between servers).
    pub chat_id: Option<ID>,
    /// How many events were dropped (0 when unknown, as after the link between servers was
    /// interrupted).
    pub missed: u64,
    /// What to do about it.
    pub reason: String,
}

/// Someone took a seat in the room's voice.
pub struct VoiceJoined {
    participant: VoiceParticipant,
}

/// Someone joined the room's voice: connect to them (the newcomer sends the offers).
#[Object]
impl VoiceJoined {
    /// The room.
    async fn chat_id(&self) -> ID {
        ID(self.participant.0.chat_id.to_string())
    }

    /// Who joined.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.participant.1, self.participant.0.user_id).await
    }

    /// Their seat and state.
    async fn participant(&self) -> &VoiceParticipant {
        &self.participant
    }
}

/// Someone left the room's voice.
pub struct VoiceLeft {
    chat_id: Uuid,
    user_id: Uuid,
    source: Source,
}

/// Someone left the room's voice (or was removed by an admin, left the room, or stayed
/// disconnected past the grace period): close the connection to them.
#[Object]
impl VoiceLeft {
    /// The room.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// Who left.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.user_id).await
    }
}

/// A participant's state changed.
pub struct VoiceStateChanged {
    participant: VoiceParticipant,
}

/// A participant muted, deafened, started or stopped speaking, raised or lowered their hand, or
/// was muted by an admin (or had that lifted).
#[Object]
impl VoiceStateChanged {
    /// The room.
    async fn chat_id(&self) -> ID {
        ID(self.participant.0.chat_id.to_string())
    }

    /// The participant as they are now.
    async fn participant(&self) -> &VoiceParticipant {
        &self.participant
    }
}

/// A room's player or queue changed.
pub struct PlaybackChanged {
    chat_id: Uuid,
    playback: crate::domain::playback::State,
    reason: PlaybackReason,
    source: Source,
}

/// A room's player or queue changed: the new state, why, and the queue as it is when delivered.
#[Object]
impl PlaybackChanged {
    /// The room.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// What changed.
    async fn reason(&self) -> PlaybackReason {
        self.reason
    }

    /// What plays now (null: nothing is loaded).
    async fn now_playing(&self) -> Option<Playback> {
        Playback::new(self.playback.clone(), self.source.clone())
    }

    /// The room's queue, next to play first.
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<QueueEntry>> {
        let entries = self
            .source
            .loader(ctx)
            .load_one(QueueOf(self.chat_id))
            .await?
            .unwrap_or_default();
        Ok(QueueEntry::list(entries, &self.source))
    }

    /// Who changed it (null when it advanced by itself).
    async fn changed_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        match self.playback.changed_by {
            Some(id) => load_user(ctx, &self.source, id).await.map(Some),
            None => Ok(None),
        }
    }
}
