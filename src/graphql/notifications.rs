//! Notifications: the list, the unread count, marking read, and the type events carry.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    loaders::{Source, UserId},
    types::{Chat, Page, User, chat::load_chat, cursor, parse_id},
};
use crate::{
    domain::notifications,
    entity::notification::{self, NotificationKind},
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

/// Marking notifications read.
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
}
