//! Notifications: the list, the unread count, marking read, the type events carry, and each
//! member's notification settings for a chat (mute, level).
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    loaders::{ChatId, Membership, MessageId, Source, UserId},
    types::{Chat, Message, Page, User, chat::load_chat, cursor, parse_id},
};
use crate::{
    domain::{access, chat_settings, notifications},
    entity::{
        chat_member::NotifyLevel,
        notification::{self, NotificationKind},
    },
};

/// A stored notification, and where its relations are read from.
pub struct Notification(pub notification::Model, pub Source);

/// Something that happened to me: who did it (`actor`), and where (`chat`), when relevant.
#[Object]
impl Notification {
    /// The notification's id (for `markNotificationsRead`).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// What happened.
    async fn kind(&self) -> NotificationKind {
        self.0.kind
    }

    /// Who caused it.
    async fn actor(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        let Some(id) = self.0.actor_id else {
            return Ok(None);
        };
        Ok(self
            .1
            .loader(ctx)
            .load_one(UserId(id))
            .await?
            .map(User::new))
    }

    /// The group I was added to, or the room I was invited to.
    async fn chat(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Chat>> {
        match self.0.chat_id {
            Some(id) => Ok(Some(load_chat(ctx, id).await?)),
            None => Ok(None),
        }
    }

    /// The message that mentioned me or replied to me, while I may still read it.
    async fn message(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let Some(id) = self.0.message_id else {
            return Ok(None);
        };
        let loader = self.1.loader(ctx);
        let Some(message) = loader.load_one(MessageId(id)).await? else {
            return Ok(None);
        };
        let viewer = ctx.viewer()?;
        let chat = loader.load_one(ChatId(message.chat_id)).await?;
        let membership = loader
            .load_one(Membership {
                user: viewer.user_id,
                chat: message.chat_id,
            })
            .await?;
        let readable = chat.is_some_and(|chat| access::can_see(viewer, &chat, membership.as_ref()));
        Ok(readable.then(|| Message(message, self.1.clone())))
    }

    /// When it happened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Whether I marked it read.
    async fn is_read(&self) -> bool {
        self.0.read_at.is_some()
    }
}

/// My notifications.
#[derive(Default)]
pub struct NotificationQuery;

#[Object]
impl NotificationQuery {
    /// My notifications, newest first, `first` (1–100, default 20) per page; only the unread
    /// ones with `unreadOnly`.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        unread_only: Option<bool>,
    ) -> async_graphql::Result<Page<Notification>> {
        let unread_only = unread_only.unwrap_or(false);
        let viewer = ctx.viewer()?;
        let after = after
            .as_deref()
            .map(|c| cursor::decode_id("after", c))
            .transpose()?;
        let first = first.map_or(20, |f| u64::try_from(f).unwrap_or(0));
        let page = notifications::page(ctx.app(), viewer, first, after, unread_only).await?;
        let items = page
            .notifications
            .into_iter()
            .map(|n| (cursor::id(n.id), Notification(n, Source::default())));
        let user = viewer.user_id;
        let counter = Arc::new(move |app| {
            Box::pin(async move { notifications::count(&app, user, unread_only).await }) as _
        });
        Ok(Page::new(items, after.is_some(), page.has_next, counter))
    }

    /// How many of my notifications are unread.
    async fn unread_notification_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let viewer = ctx.viewer()?;
        Ok(notifications::count(ctx.app(), viewer.user_id, true).await?)
    }
}

/// Marking notifications read; a chat's notification settings.
#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    /// Marks my notifications read: those named (at most 100), or all of them when `ids` is
    /// omitted. Returns how many were unread.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<u64> {
        let ids = ids
            .map(|ids| {
                ids.iter()
                    .map(|id| parse_id("ids", id))
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        Ok(notifications::mark_read(ctx.app(), ctx.viewer()?, ids).await?)
    }

    /// Mutes a chat's notifications for me until `until` (omitted or null: until I unmute it).
    /// Its unread messages and mentions still count.
    async fn mute_chat(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Chat> {
        let id = parse_id("chatId", &chat_id)?;
        Ok(Chat(
            chat_settings::mute(ctx.app(), ctx.viewer()?, id, until).await?,
        ))
    }

    /// Lets a muted chat notify me again.
    async fn unmute_chat(&self, ctx: &Context<'_>, chat_id: ID) -> async_graphql::Result<Chat> {
        let id = parse_id("chatId", &chat_id)?;
        Ok(Chat(
            chat_settings::unmute(ctx.app(), ctx.viewer()?, id).await?,
        ))
    }

    /// Chooses what a chat notifies me of: `ALL` (mentions of me and replies to my messages) or
    /// `MENTIONS_ONLY`.
    async fn set_chat_notification_level(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        level: NotifyLevel,
    ) -> async_graphql::Result<Chat> {
        let id = parse_id("chatId", &chat_id)?;
        Ok(Chat(
            chat_settings::set_level(ctx.app(), ctx.viewer()?, id, level).await?,
        ))
    }
}
