//! Threads: a thread's replies, a chat's threads, following and reading them.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    loaders::{ThreadState, ThreadStateOf, users_in_order},
    types::{Message, Page, User, cursor, parse_id},
};
use crate::{domain::threads, entity::message};

/// A thread as the caller sees it: its root, its replies' figures (the root's own), and whether
/// they follow it.
pub struct Thread(Message);

impl Thread {
    fn of(root: message::Model) -> Self {
        Self(Message::new(root))
    }

    async fn state(&self, ctx: &Context<'_>) -> async_graphql::Result<ThreadState> {
        let key = ThreadStateOf {
            user: ctx.viewer()?.user_id,
            root: self.0.0.id,
        };
        Ok(ctx.loader().load_one(key).await?.unwrap_or_default())
    }
}

/// A thread: the message that started it, its replies' figures, and my place in it.
#[Object]
impl Thread {
    /// The message that started the thread (its id is the thread's `rootId`).
    async fn root(&self) -> Message {
        Message::new(self.0.0.clone())
    }

    /// Replies, deleted ones not counted.
    async fn reply_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(self.0.thread_stats(ctx).await?.replies)
    }

    /// When the latest reply was sent.
    async fn last_reply_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.0.thread_stats(ctx).await?.last_reply_at)
    }

    /// The latest people to reply, most recent first (at most 3).
    async fn last_repliers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let ids = self.0.thread_stats(ctx).await?.repliers;
        let repliers = users_in_order(ctx.loader(), &ids).await?;
        Ok(repliers.into_iter().map(User::new).collect())
    }

    /// Whether I follow it (its author and everyone who replied do, until they unfollow).
    async fn is_following(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.state(ctx).await?.following)
    }

    /// Replies from others I have not read (0 when I do not follow it).
    async fn unread_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(self.state(ctx).await?.unread)
    }
}

/// Thread queries.
#[derive(Default)]
pub struct ThreadQuery;

#[Object]
impl ThreadQuery {
    /// The replies in the thread of `rootId`, oldest first, `first` (1–100, default 50) per page,
    /// with the same cursors as a chat's `messages`.
    async fn thread(
        &self,
        ctx: &Context<'_>,
        root_id: ID,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Message>> {
        let root = parse_id("rootId", &root_id)?;
        let after = after
            .as_deref()
            .map(|c| cursor::decode_message("after", c))
            .transpose()?;
        let first = u64::try_from(first).unwrap_or(0);
        let (replies, has_next) =
            threads::replies(ctx.app(), ctx.viewer()?, root, first, after).await?;
        let items = replies
            .into_iter()
            .map(|m| (cursor::message(m.seq), Message::new(m)));
        let counter = Arc::new(move |app| {
            Box::pin(async move { threads::reply_total(&app, root).await }) as _
        });
        Ok(Page::new(items, after.is_some(), has_next, counter))
    }

    /// A chat's threads, the most recently replied first (`first` 1–50, default 20).
    async fn threads(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<Thread>> {
        let chat = parse_id("chatId", &chat_id)?;
        let first = u64::try_from(first).unwrap_or(0);
        let roots = threads::list(ctx.app(), ctx.viewer()?, chat, first).await?;
        Ok(roots.into_iter().map(Thread::of).collect())
    }
}

/// Following threads.
#[derive(Default)]
pub struct ThreadMutation;

#[Object]
impl ThreadMutation {
    /// Follows a thread from now on (what is in it counts as read).
    async fn follow_thread(&self, ctx: &Context<'_>, root_id: ID) -> async_graphql::Result<Thread> {
        let root = parse_id("rootId", &root_id)?;
        Ok(Thread::of(
            threads::follow(ctx.app(), ctx.viewer()?, root).await?,
        ))
    }

    /// Stops following a thread; whether I followed it.
    async fn unfollow_thread(&self, ctx: &Context<'_>, root_id: ID) -> async_graphql::Result<bool> {
        let root = parse_id("rootId", &root_id)?;
        Ok(threads::unfollow(ctx.app(), ctx.viewer()?, root).await?)
    }

    /// Marks a thread I follow read up to its latest reply.
    async fn mark_thread_read(
        &self,
        ctx: &Context<'_>,
        root_id: ID,
    ) -> async_graphql::Result<Thread> {
        let root = parse_id("rootId", &root_id)?;
        Ok(Thread::of(
            threads::mark_read(ctx.app(), ctx.viewer()?, root).await?,
        ))
    }
}
