//! A chat's history as a Relay connection: decodes the cursors and paging arguments shared by
//! `Query.messages` and `Chat.messages`, and maps the domain's page to a `Page<Message>`.
use std::sync::Arc;

use async_graphql::Context;

use super::{Message, Page, cursor};
use crate::{
    domain::history::{self, Paging},
    graphql::{context::ContextExt, loaders::UserId},
};

/// Connection arguments of a history query.
pub struct HistoryArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub limit: Option<i32>,
    pub skip: Option<i32>,
}

/// A page of a chat's history as a connection.
pub async fn message_page(
    ctx: &Context<'_>,
    chat_id: uuid::Uuid,
    args: HistoryArgs,
) -> async_graphql::Result<Page<Message>> {
    let viewer = ctx.viewer()?;
    let after = args
        .after
        .as_deref()
        .map(|c| cursor::decode_message("after", c))
        .transpose()?;
    let before = args
        .before
        .as_deref()
        .map(|c| cursor::decode_message("before", c))
        .transpose()?;
    let paging = Paging::from_args(
        args.first.map(i64::from),
        after,
        args.last.map(i64::from),
        before,
        args.limit.map(i64::from),
        args.skip.map(i64::from),
    )?;
    let look = ctx.look_ahead();
    let senders = look.field("nodes").field("sender").exists()
        || look.field("edges").field("node").field("sender").exists();
    let page = history::list(ctx.app(), viewer, chat_id, paging, senders).await?;
    // The senders came with the page: `Message.sender` finds them in the request's loader.
    ctx.loader()
        .feed_many(page.senders.into_iter().map(|u| (UserId(u.id), u)))
        .await;
    let items = page
        .messages
        .into_iter()
        .map(|m| (cursor::message(m.seq), Message::new(m)));
    let counter =
        Arc::new(move |app| Box::pin(async move { history::count(&app, chat_id).await }) as _);
    Ok(Page::new(items, page.has_previous, page.has_next, counter).with_has_more(page.has_more))
}
