//! Message operations: history, lookup, search, send, edit, delete, react, forward, read markers.
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object};

use super::{
    context::ContextExt,
    types::{
        Message, Page, cursor,
        history_page::{HistoryArgs, message_page},
        parse_id,
    },
};
use crate::domain::{
    history,
    messages::{self, Outgoing},
    reactions, reads,
};

/// Input of `sendMessage`: give exactly one of `chatId` and `recipientId`.
#[derive(InputObject)]
pub struct SendMessageInput {
    /// The chat to post in.
    pub chat_id: Option<ID>,
    /// A user to message directly (the direct chat is created on first use).
    pub recipient_id: Option<ID>,
    /// The text, 1–4000 characters after trimming.
    pub content: String,
    /// A message of the same chat this one replies to.
    pub reply_to_id: Option<ID>,
    /// Files uploaded by the caller (REST `/api/upload` or `uploadFile`) to attach; with
    /// attachments `content` may be empty.
    #[graphql(default)]
    pub attachment_ids: Vec<ID>,
    /// Reply in the thread of this message (of the same chat, not itself a thread reply): the
    /// reply stays out of the chat's main timeline (`thread(rootId)` lists it).
    pub thread_root_id: Option<ID>,
}

/// Message queries.
#[derive(Default)]
pub struct MessageQuery;

#[Object]
impl MessageQuery {
    /// A chat's history as a connection, oldest first within a page. `first`/`after` pages
    /// forward, `last`/`before` backward, `limit`/`skip` by offset from the newest; with no
    /// arguments, the newest 50. Resume after a reconnect with `after: <last cursor seen>`.
    #[allow(clippy::too_many_arguments)]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        limit: Option<i32>,
        skip: Option<i32>,
    ) -> async_graphql::Result<Page<Message>> {
        let id = parse_id("chatId", &chat_id)?;
        message_page(
            ctx,
            id,
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

    /// One message by id.
    async fn message(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Message>> {
        Ok(Some(Message::new(
            messages::get(ctx.app(), ctx.viewer()?, parse_id("id", &id)?).await?,
        )))
    }

    /// Messages containing `query` (any case) in the chats I am a member of, newest first.
    async fn search_messages(
        &self,
        ctx: &Context<'_>,
        query: String,
        chat_id: Option<ID>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Message>> {
        let viewer = *ctx.viewer()?;
        let chat_id = chat_id
            .as_ref()
            .map(|id| parse_id("chatId", id))
            .transpose()?;
        let after = after
            .as_deref()
            .map(|c| cursor::decode_id("after", c))
            .transpose()?;
        let first = u64::try_from(first).unwrap_or(0);
        let (found, has_next) =
            history::search(ctx.app(), &viewer, &query, chat_id, first, after).await?;
        let items = found
            .into_iter()
            .map(|m| (cursor::id(m.id), Message::new(m)));
        let counter = Arc::new(move |app| {
            let query = query.clone();
            Box::pin(async move { history::search_count(&app, &viewer, &query, chat_id).await })
                as _
        });
        Ok(Page::new(items, after.is_some(), has_next, counter))
    }
}

/// Message mutations.
#[derive(Default)]
pub struct MessageMutation;

#[Object]
impl MessageMutation {
    /// Sends a text message to a chat, or directly to a user.
    async fn send_message(
        &self,
        ctx: &Context<'_>,
        input: SendMessageInput,
    ) -> async_graphql::Result<Message> {
        let outgoing = Outgoing {
            chat_id: input
                .chat_id
                .as_ref()
                .map(|id| parse_id("chatId", id))
                .transpose()?,
            recipient_id: input
                .recipient_id
                .as_ref()
                .map(|id| parse_id("recipientId", id))
                .transpose()?,
            content: input.content,
            reply_to_id: input
                .reply_to_id
                .as_ref()
                .map(|id| parse_id("replyToId", id))
                .transpose()?,
            attachment_ids: input
                .attachment_ids
                .iter()
                .map(|id| parse_id("attachmentIds", id))
                .collect::<Result<_, _>>()?,
            thread_root_id: input
                .thread_root_id
                .as_ref()
                .map(|id| parse_id("threadRootId", id))
                .transpose()?,
        };
        Ok(Message::new(
            messages::send(ctx.app(), ctx.viewer()?, outgoing).await?,
        ))
    }

    /// Changes the text of one's own message.
    async fn edit_message(
        &self,
        ctx: &Context<'_>,
        id: ID,
        content: String,
    ) -> async_graphql::Result<Message> {
        Ok(Message::new(
            messages::edit(ctx.app(), ctx.viewer()?, parse_id("id", &id)?, &content).await?,
        ))
    }

    /// Deletes a message (its sender, or a chat admin); it stays in history as deleted.
    async fn delete_message(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Message> {
        Ok(Message::new(
            messages::delete(ctx.app(), ctx.viewer()?, parse_id("id", &id)?).await?,
        ))
    }

    /// Adds the caller's reaction with `emoji`, or removes it if present.
    async fn toggle_reaction(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
        emoji: String,
    ) -> async_graphql::Result<Message> {
        let id = parse_id("messageId", &message_id)?;
        Ok(Message::new(
            reactions::toggle(ctx.app(), ctx.viewer()?, id, &emoji).await?,
        ))
    }

    /// Copies a message into other chats; returns how many copies were sent.
    async fn forward_message(
        &self,
        ctx: &Context<'_>,
        message_id: ID,
        target_chat_ids: Vec<ID>,
    ) -> async_graphql::Result<u64> {
        let id = parse_id("messageId", &message_id)?;
        let targets = target_chat_ids
            .iter()
            .map(|t| parse_id("targetChatIds", t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(messages::forward(ctx.app(), ctx.viewer()?, id, &targets).await?)
    }

    /// Moves my read marker up to this message; returns how many messages became read.
    async fn mark_read(&self, ctx: &Context<'_>, message_id: ID) -> async_graphql::Result<u64> {
        Ok(reads::mark_read(
            ctx.app(),
            ctx.viewer()?,
            parse_id("messageId", &message_id)?,
        )
        .await?)
    }

    /// Marks a whole chat read; returns how many messages became read.
    async fn mark_chat_read(&self, ctx: &Context<'_>, chat_id: ID) -> async_graphql::Result<u64> {
        Ok(reads::mark_chat_read(ctx.app(), ctx.viewer()?, parse_id("chatId", &chat_id)?).await?)
    }
}
