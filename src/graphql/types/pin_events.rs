//! Events about one message besides its creation and edits: pinning (`MessagePinned`,
//! `MessageUnpinned`) and its link preview (`LinkPreviewReady`), in `chatEvents` and `myEvents`.
use async_graphql::{Context, ID, Object};
use uuid::Uuid;

use super::{Message, User, event::load_user};
use crate::{
    error::AppError,
    graphql::loaders::{MessageId, Source},
};

/// A message was pinned in its chat.
pub struct MessagePinned {
    pub(super) message: Message,
    pub(super) by: Uuid,
    pub(super) source: Source,
}

/// Someone pinned a message: add it to the chat's pinned messages.
#[Object]
impl MessagePinned {
    /// The message pinned.
    async fn message(&self) -> &Message {
        &self.message
    }

    /// Who pinned it.
    async fn pinned_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.by).await
    }
}

/// A message was unpinned.
pub struct MessageUnpinned {
    pub(super) chat_id: Uuid,
    pub(super) message_id: Uuid,
    pub(super) by: Uuid,
    pub(super) source: Source,
}

/// Someone unpinned a message: take it out of the chat's pinned messages.
#[Object]
impl MessageUnpinned {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// The message unpinned.
    async fn message_id(&self) -> ID {
        ID(self.message_id.to_string())
    }

    /// Who unpinned it.
    async fn unpinned_by(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        load_user(ctx, &self.source, self.by).await
    }
}

/// A message's link preview is ready.
pub struct LinkPreviewReady {
    pub(super) chat_id: Uuid,
    pub(super) message_id: Uuid,
    pub(super) source: Source,
}

/// The preview of the first link of a message was fetched: show it (`message.linkPreview`).
#[Object]
impl LinkPreviewReady {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// The message, with its `linkPreview`.
    async fn message(&self, ctx: &Context<'_>) -> async_graphql::Result<Message> {
        let message = self
            .source
            .loader(ctx)
            .load_one(MessageId(self.message_id))
            .await?
            .ok_or_else(|| AppError::NotFound("message not found".into()))?;
        Ok(Message(message, self.source.clone()))
    }
}
