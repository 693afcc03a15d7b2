//! The `Message` type: content hidden once deleted, reply preview, forward origin, status and
//! reactions grouped by emoji, all through the DataLoader.
use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{Attachment, Chat, User, chat::load_chat, poll::Poll};
use crate::{
    domain::{reads, threads},
    entity::message::{self, MessageKind},
    graphql::{
        context::ContextExt,
        loaders::{
            AttachmentsOf, Loaders, MembersOf, Membership, MentionsOf, MessageId, PinnedNow,
            PollOf, PreviewOf, ReachesAll, ReactionsOn, SavedBy, Source, ThreadStatsOf, UserId,
            users_in_order,
        },
    },
};

/// A message's delivery state as its sender sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Enum)]
pub enum MessageStatus {
    /// Stored; no other member has fetched it yet.
    Sent,
    /// Another member has fetched it.
    Delivered,
    /// Another member has read it.
    Read,
}

impl From<reads::MessageStatus> for MessageStatus {
    fn from(status: reads::MessageStatus) -> Self {
        match status {
            reads::MessageStatus::Sent => Self::Sent,
            reads::MessageStatus::Delivered => Self::Delivered,
            reads::MessageStatus::Read => Self::Read,
        }
    }
}

/// The reactions with one emoji.
#[derive(SimpleObject)]
pub struct ReactionGroup {
    /// The emoji.
    pub emoji: String,
    /// How many people reacted with it.
    pub count: u64,
    /// Whether the caller is one of them.
    pub reacted_by_me: bool,
    /// Who reacted, in the order they did.
    pub users: Vec<User>,
}

/// A message the caller may read, and where its relations are loaded from.
pub struct Message(pub message::Model, pub Source);

impl Message {
    /// A message read in this request.
    pub fn new(model: message::Model) -> Self {
        Self(model, Source::default())
    }
}

impl Message {
    /// What this message shows of the thread it started (nothing for a reply in a thread).
    pub(crate) async fn thread_stats(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<threads::Stats> {
        if self.0.thread_root_id.is_some() {
            return Ok(threads::Stats::default());
        }
        let stats = self
            .1
            .loader(ctx)
            .load_one(ThreadStatsOf(self.0.id))
            .await?;
        Ok(stats.unwrap_or_default())
    }
}

/// A message in a chat.
#[Object]
impl Message {
    /// Stable unique id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The chat's id.
    async fn chat_id(&self) -> ID {
        ID(self.0.chat_id.to_string())
    }

    /// The chat it belongs to.
    async fn chat(&self, ctx: &Context<'_>) -> async_graphql::Result<Chat> {
        load_chat(ctx, self.0.chat_id).await
    }

    /// Who sent it; null for system messages and deleted accounts.
    async fn sender(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(self.1.loader(ctx), self.0.sender_id).await
    }

    /// Text, image, file, audio or system.
    async fn kind(&self) -> MessageKind {
        self.0.kind
    }

    /// The text; null once the message is deleted.
    async fn content(&self) -> Option<&str> {
        if self.0.deleted_at.is_some() {
            return None;
        }
        self.0.content.as_deref()
    }

    /// The message this one replies to (a preview: ask for its content and sender).
    async fn reply_to(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Message>> {
        let Some(id) = self.0.reply_to_id else {
            return Ok(None);
        };
        Ok(self
            .1
            .loader(ctx)
            .load_one(MessageId(id))
            .await?
            .map(Message::new))
    }

    /// The members it names (`@username`); empty once deleted.
    async fn mentions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        if self.0.deleted_at.is_some() {
            return Ok(Vec::new());
        }
        let loader = self.1.loader(ctx);
        let ids = loader
            .load_one(MentionsOf(self.0.id))
            .await?
            .unwrap_or_default();
        let mut named = users_in_order(loader, &ids).await?;
        named.sort_by(|a, b| a.username_key.cmp(&b.username_key));
        Ok(named.into_iter().map(User::new).collect())
    }

    /// Whether it mentioned every member (`@all` from an admin of a group or room).
    async fn mentions_everyone(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        if self.0.deleted_at.is_some() {
            return Ok(false);
        }
        Ok(self
            .1
            .loader(ctx)
            .load_one(ReachesAll(self.0.id))
            .await?
            .unwrap_or(false))
    }

    /// The poll, when it is one (`kind` POLL; `content` is its question).
    async fn poll(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Poll>> {
        if self.0.kind != MessageKind::Poll || self.0.deleted_at.is_some() {
            return Ok(None);
        }
        let poll = self.1.loader(ctx).load_one(PollOf(self.0.id)).await?;
        Ok(poll.map(|p| Poll(p, self.1.clone())))
    }

    /// The preview of its first http(s) link, once fetched (`LinkPreviewReady` tells when).
    async fn link_preview(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<LinkPreview>> {
        if self.0.deleted_at.is_some() {
            return Ok(None);
        }
        let preview = self.1.loader(ctx).load_one(PreviewOf(self.0.id)).await?;
        Ok(preview.map(LinkPreview))
    }

    /// For a reply in a thread: the message that started the thread.
    async fn thread_root_id(&self) -> Option<ID> {
        self.0.thread_root_id.map(|id| ID(id.to_string()))
    }

    /// Replies in the thread this message started (deleted ones not counted).
    async fn reply_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok(self.thread_stats(ctx).await?.replies)
    }

    /// When the latest reply in its thread was sent.
    async fn last_reply_at(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(self.thread_stats(ctx).await?.last_reply_at)
    }

    /// The latest people to reply in its thread, most recent first (at most 3).
    async fn last_repliers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let ids = self.thread_stats(ctx).await?.repliers;
        let repliers = users_in_order(self.1.loader(ctx), &ids).await?;
        Ok(repliers.into_iter().map(User::new).collect())
    }

    /// Whether it is pinned in its chat.
    async fn is_pinned(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self
            .1
            .loader(ctx)
            .load_one(PinnedNow(self.0.id))
            .await?
            .unwrap_or(false))
    }

    /// Whether I saved it (`saveMessage`).
    async fn is_saved(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let user = ctx.viewer()?.user_id;
        let key = SavedBy {
            user,
            message: self.0.id,
        };
        Ok(ctx.loader().load_one(key).await?.unwrap_or(false))
    }

    /// The id of the message this one replies to.
    async fn reply_to_id(&self) -> Option<ID> {
        self.0.reply_to_id.map(|id| ID(id.to_string()))
    }

    /// For a forwarded copy: who wrote the original.
    async fn forwarded_from(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<User>> {
        user(self.1.loader(ctx), self.0.forwarded_from_sender_id).await
    }

    /// When the text was last edited.
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }

    /// Deleted messages stay in the history with their content hidden.
    async fn is_deleted(&self) -> bool {
        self.0.deleted_at.is_some()
    }

    /// SENT, DELIVERED (another member fetched it) or READ (another member read it).
    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<MessageStatus> {
        let members = self
            .1
            .loader(ctx)
            .load_one(MembersOf(self.0.chat_id))
            .await?
            .unwrap_or_default();
        Ok(reads::status(&self.0, &members).into())
    }

    /// Members (other than the sender) who have read it.
    async fn read_by(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let members = self
            .1
            .loader(ctx)
            .load_one(MembersOf(self.0.chat_id))
            .await?
            .unwrap_or_default();
        let ids: Vec<UserId> = reads::read_by(&self.0, &members)
            .into_iter()
            .map(UserId)
            .collect();
        let users = self.1.loader(ctx).load_many(ids.clone()).await?;
        Ok(ids
            .iter()
            .filter_map(|id| users.get(id).cloned())
            .map(User::new)
            .collect())
    }

    /// For the caller: their own message has been read by someone; another's message is at or
    /// before the caller's read marker.
    async fn is_read(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let viewer = ctx.viewer()?;
        if self.0.sender_id == Some(viewer.user_id) {
            let members = self
                .1
                .loader(ctx)
                .load_one(MembersOf(self.0.chat_id))
                .await?
                .unwrap_or_default();
            return Ok(reads::status(&self.0, &members) == reads::MessageStatus::Read);
        }
        let mine = self
            .1
            .loader(ctx)
            .load_one(Membership {
                user: viewer.user_id,
                chat: self.0.chat_id,
            })
            .await?;
        Ok(mine.is_some_and(|m| m.last_read_seq >= self.0.seq))
    }

    /// Reactions grouped by emoji, in the order each emoji was first used.
    async fn reactions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ReactionGroup>> {
        let viewer = ctx.viewer()?;
        let rows = self
            .1
            .loader(ctx)
            .load_one(ReactionsOn(self.0.id))
            .await?
            .unwrap_or_default();
        let users = self
            .1
            .loader(ctx)
            .load_many(rows.iter().map(|r| UserId(r.user_id)))
            .await?;
        let mut groups: Vec<ReactionGroup> = Vec::new();
        for row in rows {
            let index = match groups.iter().position(|g| g.emoji == row.emoji) {
                Some(i) => i,
                None => {
                    groups.push(ReactionGroup {
                        emoji: row.emoji.clone(),
                        count: 0,
                        reacted_by_me: false,
                        users: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            let group = &mut groups[index];
            group.count += 1;
            group.reacted_by_me |= row.user_id == viewer.user_id;
            if let Some(user) = users.get(&UserId(row.user_id)) {
                group.users.push(User::new(user.clone()));
            }
        }
        Ok(groups)
    }

    /// Files attached to it (none once it is deleted).
    async fn attachments(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Attachment>> {
        if self.0.deleted_at.is_some() {
            return Ok(Vec::new());
        }
        let files = self
            .1
            .loader(ctx)
            .load_one(AttachmentsOf(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(files.into_iter().map(Attachment).collect())
    }

    /// When it was sent.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

async fn user(loader: &Loaders, id: Option<uuid::Uuid>) -> async_graphql::Result<Option<User>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(loader.load_one(UserId(id)).await?.map(User::new))
}

/// What a linked page says about itself.
pub struct LinkPreview(crate::entity::link_preview::Model);

/// The preview of a link: the page's Open Graph data, or its title and description.
#[Object]
impl LinkPreview {
    /// The link as written in the message.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The page's title.
    async fn title(&self) -> Option<&str> {
        self.0.title.as_deref()
    }

    /// The page's description.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }

    /// The page's image (an absolute http(s) URL on the linked site's terms: load it from there).
    async fn image_url(&self) -> Option<&str> {
        self.0.image_url.as_deref()
    }

    /// The site's name.
    async fn site_name(&self) -> Option<&str> {
        self.0.site_name.as_deref()
    }
}
