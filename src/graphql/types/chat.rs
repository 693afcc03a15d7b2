//! The `Chat` and `ChatMember` types. Every relation goes through the DataLoader; the caller's own
//! state (role, archive flag, unread count) is keyed by the caller so one batch serves a whole list.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    Message, Page, Playback, QueueEntry, User, cursor,
    history_page::{HistoryArgs, message_page},
    voice::VoiceParticipant,
};
use crate::{
    domain::{access, reads::UnreadCounts, validate},
    entity::{
        chat::{self, ChatKind},
        chat_member::{self, MemberRole, NotifyLevel},
    },
    error::AppError,
    graphql::{
        context::ContextExt,
        loaders::{
            ChatId, MemberCountOf, MembersOf, Membership, MessageId, OwnerOf, PinsOf, PlaybackOf,
            QueueOf, Source, Unread, UserId, VoiceOf,
        },
    },
};

/// Largest page of members.
const MEMBERS_PAGE_MAX: u64 = 200;

/// A chat the caller may read.
pub struct Chat(pub chat::Model);

impl Chat {
    async fn my_membership(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<chat_member::Model>> {
        let viewer = ctx.viewer()?;
        Ok(ctx
            .loader()
            .load_one(Membership {
                user: viewer.user_id,
                chat: self.0.id,
            })
            .await?)
    }

    async fn unread(&self, ctx: &Context<'_>) -> async_graphql::Result<UnreadCounts> {
        let viewer = ctx.viewer()?;
        Ok(ctx
            .loader()
            .load_one(Unread {
                user: viewer.user_id,
                chat: self.0.id,
            })
            .await?
            .unwrap_or_default())
    }
}

/// A conversation: a direct chat between two people, a group, or a room.
#[Object]
impl Chat {
    /// Stable unique id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Direct chat, group or room.
    async fn kind(&self) -> ChatKind {
        self.0.kind
    }

    /// The name of a group or room; null for direct chats.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    /// What to show as the chat's title: its name, or for a direct chat the other person's name.
    async fn title(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        if let Some(name) = &self.0.name {
            return Ok(name.clone());
        }
        let viewer = ctx.viewer()?;
        let members = ctx
            .loader()
            .load_one(MembersOf(self.0.id))
            .await?
            .unwrap_or_default();
        let others: Vec<UserId> = members
            .iter()
            .filter(|m| m.user_id != viewer.user_id)
            .map(|m| UserId(m.user_id))
            .collect();
        let users = ctx.loader().load_many(others.clone()).await?;
        let names: Vec<String> = others
            .iter()
            .filter_map(|id| users.get(id))
            .map(|u| u.full_name.clone().unwrap_or_else(|| u.username.clone()))
            .collect();
        Ok(names.join(" & "))
    }

    /// Free text about the chat.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// URL of the group or room image (a signed link valid for about an hour).
    async fn image_url(&self, ctx: &Context<'_>) -> Option<String> {
        let stored = self.0.image_url.as_deref()?;
        Some(match crate::domain::files::file_id_of(stored) {
            Some(id) => crate::domain::files::signed_url(ctx.app(), id),
            None => crate::domain::files::absolute(ctx.app(), stored),
        })
    }

    /// Private chats are visible only to their members; direct chats and groups always are.
    async fn is_private(&self) -> bool {
        self.0.is_private
    }

    /// Rooms: whether any member may add tracks to the queue (otherwise only admins).
    async fn anyone_can_enqueue(&self) -> bool {
        self.0.anyone_can_enqueue
    }

    /// Rooms: what is playing now (null when nothing is loaded; always null for other chats).
    async fn now_playing(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Playback>> {
        if self.0.kind != ChatKind::Room {
            return Ok(None);
        }
        let state = ctx.loader().load_one(PlaybackOf(self.0.id)).await?;
        Ok(state.and_then(|s| Playback::new(s, Source::default())))
    }

    /// Rooms: the tracks that play next, in order (empty for other chats).
    async fn queue(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<QueueEntry>> {
        if self.0.kind != ChatKind::Room {
            return Ok(Vec::new());
        }
        let entries = ctx.loader().load_one(QueueOf(self.0.id)).await?;
        Ok(QueueEntry::list(
            entries.unwrap_or_default(),
            &Source::default(),
        ))
    }

    /// Members in the order they joined, `first` (1–200, default 50) per page.
    async fn members(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<ChatMember>> {
        let first = validate::page_size("first", first.unwrap_or(50).into(), MEMBERS_PAGE_MAX)?;
        let start = match after {
            Some(after) => cursor::decode_index("after", &after)? + 1,
            None => 0,
        };
        let members = ctx
            .loader()
            .load_one(MembersOf(self.0.id))
            .await?
            .unwrap_or_default();
        let total = members.len() as u64;
        let end = (start + first as usize).min(members.len());
        let items: Vec<(String, ChatMember)> = members
            .into_iter()
            .enumerate()
            .skip(start)
            .take(end.saturating_sub(start))
            .map(|(i, m)| (cursor::index(i), ChatMember(m)))
            .collect();
        let counter = Arc::new(move |_| Box::pin(async move { Ok(total) }) as _);
        Ok(Page::new(items, start > 0, (end as u64) < total, counter))
    }

    /// How many members the chat has.
    async fn member_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(ctx
            .loader()
            .load_one(MemberCountOf(self.0.id))
            .await?
            .unwrap_or(0))
    }

    /// The owner of a group or room; null for direct chats.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(owner) = ctx.loader().load_one(OwnerOf(self.0.id)).await? else {
            return Ok(None);
        };
        Ok(ctx
            .loader()
            .load_one(UserId(owner.user_id))
            .await?
            .map(User::new))
    }

    /// The caller's role here; null when the caller is not a member.
    async fn my_role(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<MemberRole>> {
        Ok(self.my_membership(ctx).await?.map(|m| m.role))
    }

    /// Whether the caller is muted here (muted members cannot post).
    async fn is_muted(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.my_membership(ctx).await?.is_some_and(|m| m.muted))
    }

    /// Whether the caller archived this chat (archiving is per person).
    async fn archived(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.my_membership(ctx).await?.is_some_and(|m| m.archived))
    }

    /// The newest message of the main timeline (a reply in a thread is not one).
    async fn last_message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let Some(id) = self.0.last_message_id else {
            return Ok(None);
        };
        Ok(ctx
            .loader()
            .load_one(MessageId(id))
            .await?
            .map(Message::new))
    }

    /// Messages from others after the caller's read marker (deleted ones not counted).
    async fn unread_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(self.unread(ctx).await?.messages)
    }

    /// The messages pinned here, most recently pinned first (at most 50).
    async fn pinned_messages(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Message>> {
        let viewer = ctx.viewer()?;
        let membership = self.my_membership(ctx).await?;
        if !access::can_see(viewer, &self.0, membership.as_ref()) {
            return Ok(Vec::new());
        }
        let pinned = ctx.loader().load_one(PinsOf(self.0.id)).await?;
        Ok(pinned
            .unwrap_or_default()
            .into_iter()
            .map(Message::new)
            .collect())
    }

    /// How many of the unread messages mention the caller (by name, or through `@all`).
    async fn unread_mention_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(self.unread(ctx).await?.mentions)
    }

    /// How this chat notifies the caller (null when not a member).
    async fn notification_level(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<NotifyLevel>> {
        Ok(self.my_membership(ctx).await?.map(|m| m.notify_level))
    }

    /// Whether the caller muted this chat's notifications now (its unread messages still count).
    async fn notifications_muted(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let now = chrono::Utc::now();
        Ok(self
            .my_membership(ctx)
            .await?
            .and_then(|m| m.notifications_muted_until)
            .is_some_and(|until| until > now))
    }

    /// Until when the caller muted this chat's notifications; null when they are not muted, or
    /// muted until the caller unmutes them.
    async fn notifications_muted_until(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        let now = chrono::Utc::now();
        Ok(self
            .my_membership(ctx)
            .await?
            .and_then(|m| m.notifications_muted_until)
            .filter(|&until| until > now && until < *crate::domain::chat_settings::FOR_EVER))
    }

    /// Who is in the room's voice now, in the order they joined (empty for groups and direct
    /// chats).
    async fn voice_participants(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<VoiceParticipant>> {
        Ok(ctx
            .loader()
            .load_one(VoiceOf(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(VoiceParticipant::new)
            .collect())
    }

    /// When the chat was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the last message was sent (or the chat created); chat lists sort by it.
    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.0.last_activity_at
    }

    /// The chat's history, oldest first within a page (see `Query.messages`).
    #[allow(clippy::too_many_arguments)]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        limit: Option<i32>,
        skip: Option<i32>,
    ) -> async_graphql::Result<Page<Message>> {
        message_page(
            ctx,
            self.0.id,
            HistoryArgs {
                first,
                after,
                last,
                before,
                limit,
                skip,
            },
        )
        .await
    }
}

/// Someone's membership in a chat.
pub struct ChatMember(pub chat_member::Model);

/// A member of a chat with their role.
#[Object]
impl ChatMember {
    /// The member.
    async fn user(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        ctx.loader()
            .load_one(UserId(self.0.user_id))
            .await?
            .map(User::new)
            .ok_or_else(|| AppError::NotFound("user not found".into()).into())
    }

    /// Owner, admin or member.
    async fn role(&self) -> MemberRole {
        self.0.role
    }

    /// Muted members cannot post.
    async fn is_muted(&self) -> bool {
        self.0.muted
    }

    /// When they joined.
    async fn joined_at(&self) -> DateTime<Utc> {
        self.0.joined_at
    }
}

/// Loads a chat by id for fields that point at one (the caller already may read it).
pub async fn load_chat(ctx: &Context<'_>, id: uuid::Uuid) -> async_graphql::Result<Chat> {
    ctx.loader()
        .load_one(ChatId(id))
        .await?
        .map(Chat)
        .ok_or_else(|| AppError::NotFound("chat not found".into()).into())
}
