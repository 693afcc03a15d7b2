//! Ranked message search: `messageSearch`, best matches first, with filters and snippets.
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    types::{Message, Page, cursor, parse_id},
};
use crate::domain::search::{self, Search};

/// Narrows a search.
#[derive(InputObject, Default)]
pub struct MessageSearchFilter {
    /// Only this chat (one I am a member of).
    pub chat_id: Option<ID>,
    /// Only messages this user sent.
    pub from: Option<ID>,
    /// Only messages with (true) or without (false) attachments.
    pub has_attachment: Option<bool>,
    /// Only messages sent after this time.
    pub sent_after: Option<DateTime<Utc>>,
    /// Only messages sent before this time.
    pub sent_before: Option<DateTime<Utc>>,
}

/// One search result.
#[derive(SimpleObject)]
pub struct MessageSearchHit {
    /// The message found.
    pub message: Message,
    /// How well it matched: higher is better (comparable within one search only).
    pub score: f64,
    /// The text around the matches, as HTML: escaped, the matched words in `<mark>`.
    pub snippet: String,
}

/// Message search.
#[derive(Default)]
pub struct SearchQuery;

#[Object]
impl SearchQuery {
    /// Messages of my chats that contain every word of `query` (the last one as a prefix), best
    /// match first, `first` (1–50, default 20) per page. Edits and deletions count at once.
    async fn message_search(
        &self,
        ctx: &Context<'_>,
        query: String,
        filter: Option<MessageSearchFilter>,
        #[graphql(default = 20)] first: i32,
        after: Option<String>,
    ) -> async_graphql::Result<Page<MessageSearchHit>> {
        let viewer = *ctx.viewer()?;
        let filter = filter.unwrap_or_default();
        let search = Search {
            text: query,
            chat_id: filter
                .chat_id
                .as_ref()
                .map(|id| parse_id("chatId", id))
                .transpose()?,
            from: filter
                .from
                .as_ref()
                .map(|id| parse_id("from", id))
                .transpose()?,
            has_attachment: filter.has_attachment,
            sent_after: filter.sent_after,
            sent_before: filter.sent_before,
        };
        let offset = after
            .as_deref()
            .map(|c| cursor::decode_index("after", c).map(|i| i + 1))
            .transpose()?
            .unwrap_or(0);
        let first = u64::try_from(first).unwrap_or(0);
        let (hits, has_next) =
            search::ranked(ctx.app(), &viewer, &search, first, offset as u64).await?;
        let items = hits.into_iter().enumerate().map(|(i, hit)| {
            let node = MessageSearchHit {
                message: Message::new(hit.message),
                score: hit.score,
                snippet: hit.snippet,
            };
            (cursor::index(offset + i), node)
        });
        let counter = Arc::new(move |app| {
            let search = search.clone();
            Box::pin(async move { search::count(&app, &viewer, &search).await }) as _
        });
        Ok(Page::new(items, offset > 0, has_next, counter))
    }
}
