//! Pinned and saved messages: pinning and unpinning, saving and unsaving, and my saved list.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};

use super::{
    context::ContextExt,
    types::{Message, Page, cursor, parse_id},
};
use crate::domain::{pins, saved};

/// My saved messages.
#[derive(Default)]
pub struct KeptQuery;

#[Object]
impl KeptQuery {
    /// The messages I saved that I may still read, most recently saved first, `first` (1–100,
    /// default 20) per page.
    async fn saved_messages(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Message>> {
        let viewer = *ctx.viewer()?;
        let after = after
            .as_deref()
            .map(|c| cursor::decode_id("after", c))
            .transpose()?;
        let first = u64::try_from(first).unwrap_or(0);
        let page = saved::page(ctx.app(), &viewer, first, after).await?;
        let items = page
            .items
            .into_iter()
            .map(|(row, message)| (cursor::id(row.id), Message::new(message)));
        let counter =
            Arc::new(move |app| Box::pin(async move { saved::count(&app, &viewer).await }) as _);
        Ok(Page::new(items, after.is_some(), page.has_next, counter))
    }
}

/// Pinning and saving.
#[derive(Default)]
pub struct KeptMutation;

#[Object]
impl KeptMutation {
    /// Pins a message in its chat (admins of groups and rooms; either person in a direct chat);
    /// at most 50 per chat. Members get `MessagePinned`.
    async fn pin_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> async_graphql::Result<Message> {
        let id = parse_id("messageId", &message_id)?;
        Ok(Message::new(pins::pin(ctx.app(), ctx.viewer()?, id).await?))
    }

    /// Unpins a message. Members get `MessageUnpinned`.
    async fn unpin_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> async_graphql::Result<Message> {
        let id = parse_id("messageId", &message_id)?;
        Ok(Message::new(
            pins::unpin(ctx.app(), ctx.viewer()?, id).await?,
        ))
    }

    /// Saves a message I may read, for myself only (at most 1,000).
    async fn save_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> async_graphql::Result<Message> {
        let id = parse_id("messageId", &message_id)?;
        Ok(Message::new(
            saved::save(ctx.app(), ctx.viewer()?, id).await?,
        ))
    }

    /// Forgets a saved message; whether it was saved.
    async fn unsave_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
    ) -> async_graphql::Result<bool> {
        let id = parse_id("messageId", &message_id)?;
        Ok(saved::unsave(ctx.app(), ctx.viewer()?, id).await?)
    }
}
