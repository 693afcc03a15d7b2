//! Chat and room operations: lists, direct chats, groups, membership, archive, rooms.
use std::sync::Arc;

use async_graphql::{Context, ID, InputObject, Object};

use super::{
    context::ContextExt,
    types::{Chat, Page, chat_prefetch::prefetch_list, cursor, parse_id},
};
use crate::{
    domain::{
        chats::{self, ChatChanges, ChatPage, NewChat},
        members, rooms,
    },
    entity::chat::ChatKind,
    error::AppError,
};

/// Input of `createGroup`.
#[derive(InputObject)]
pub struct CreateGroupInput {
    /// 1–100 characters.
    pub name: String,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// Usernames, emails or ids of the first members (the caller is added as owner).
    #[graphql(default)]
    pub members: Vec<String>,
}

/// Input of `updateGroup`; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateGroupInput {
    /// New name, 1–100 characters.
    pub name: Option<String>,
    /// New description (empty clears it).
    pub description: Option<String>,
    /// Rooms only: whether any member may add tracks to the queue.
    pub anyone_can_enqueue: Option<bool>,
}

/// Input of `createRoom`.
#[derive(InputObject)]
pub struct CreateRoomInput {
    /// 1–100 characters.
    pub name: String,
    /// Up to 1000 characters.
    pub description: Option<String>,
    /// Private rooms are visible only to members and joinable only by invited users.
    #[graphql(default = false)]
    pub is_private: bool,
    /// Whether any member may add tracks to the queue (otherwise only admins).
    #[graphql(default = false)]
    pub anyone_can_enqueue: bool,
}

fn chat_page(page: ChatPage, after: bool, counter: super::types::Counter) -> Page<Chat> {
    let items = page
        .chats
        .into_iter()
        .map(|c| (cursor::chat(c.last_activity_at, c.id), Chat(c)));
    Page::new(items, after, page.has_next, counter)
}

fn page_size(first: Option<i32>) -> u64 {
    first.map_or(20, |f| u64::try_from(f).unwrap_or(0))
}

/// What a member mutation does to one member of a chat.
enum MemberChange {
    Remove,
    Admin(bool),
    Muted(bool),
}

/// The member mutations: parse both ids, apply the change in the domain, answer `true`.
async fn change_member(
    ctx: &Context<'_>,
    chat_id: ID,
    user_id: ID,
    change: MemberChange,
) -> async_graphql::Result<bool> {
    let (chat, user) = (parse_id("chatId", &chat_id)?, parse_id("userId", &user_id)?);
    let (app, viewer) = (ctx.app(), ctx.viewer()?);
    match change {
        MemberChange::Remove => members::remove_member(app, viewer, chat, user).await?,
        MemberChange::Admin(admin) => members::set_admin(app, viewer, chat, user, admin).await?,
        MemberChange::Muted(muted) => members::set_muted(app, viewer, chat, user, muted).await?,
    }
    Ok(true)
}

async fn set_archived(
    ctx: &Context<'_>,
    chat_id: ID,
    archived: bool,
) -> async_graphql::Result<Chat> {
    let id = parse_id("chatId", &chat_id)?;
    Ok(Chat(
        chats::set_archived(ctx.app(), ctx.viewer()?, id, archived).await?,
    ))
}

/// Chat and room queries.
#[derive(Default)]
pub struct ChatQuery;

#[Object]
impl ChatQuery {
    /// My chats, newest activity first; `archived: true` lists the archived ones instead.
    /// Staff may pass `all: true` to list every chat.
    async fn chats(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] archived: bool,
        #[graphql(default = false)] all: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Chat>> {
        let viewer = *ctx.viewer()?;
        let after = after
            .as_deref()
            .map(|c| cursor::decode_chat("after", c))
            .transpose()?;
        let page = chats::list(ctx.app(), &viewer, archived, all, page_size(first), after).await?;
        let memberships = page.memberships.as_deref().unwrap_or_default();
        prefetch_list(ctx, &page.chats, memberships).await?;
        let counter = Arc::new(move |app| {
            Box::pin(async move { chats::count(&app, &viewer, archived, all).await }) as _
        });
        Ok(chat_page(page, after.is_some(), counter))
    }

    /// One chat by id.
    async fn chat(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Chat>> {
        let viewer = ctx.viewer()?;
        Ok(Some(Chat(
            chats::get(ctx.app(), viewer, parse_id("id", &id)?).await?,
        )))
    }

    /// Public rooms plus the private rooms I belong to, newest activity first, optionally
    /// filtered by name.
    async fn rooms(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<Chat>> {
        let viewer = *ctx.viewer()?;
        let after = after
            .as_deref()
            .map(|c| cursor::decode_chat("after", c))
            .transpose()?;
        let page = rooms::list(
            ctx.app(),
            &viewer,
            search.as_deref(),
            page_size(first),
            after,
        )
        .await?;
        let counter = Arc::new(move |app| {
            let search = search.clone();
            Box::pin(async move { rooms::count(&app, &viewer, search.as_deref()).await }) as _
        });
        Ok(chat_page(page, after.is_some(), counter))
    }

    /// One room by id.
    async fn room(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Chat>> {
        let viewer = ctx.viewer()?;
        let chat = chats::get(ctx.app(), viewer, parse_id("id", &id)?).await?;
        if chat.kind != ChatKind::Room {
            return Err(AppError::NotFound("room not found".into()).into());
        }
        Ok(Some(Chat(chat)))
    }
}

/// Chat and room mutations.
#[derive(Default)]
pub struct ChatMutation;

#[Object]
impl ChatMutation {
    /// Opens the direct chat with a user named by username, email or id (the same chat every time).
    async fn open_direct_chat(
        &self,
        ctx: &Context<'_>,
        identifier: String,
    ) -> async_graphql::Result<Chat> {
        Ok(Chat(
            chats::open_direct(ctx.app(), ctx.viewer()?, &identifier).await?,
        ))
    }

    /// Creates a group with the caller as owner; every named member must exist.
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        input: CreateGroupInput,
    ) -> async_graphql::Result<Chat> {
        let new = NewChat {
            name: input.name,
            description: input.description,
            members: input.members,
            is_private: true,
            anyone_can_enqueue: false,
        };
        Ok(Chat(
            chats::create(ctx.app(), ctx.viewer()?, ChatKind::Group, new).await?,
        ))
    }

    /// Renames or re-describes a group or room, or changes a room's settings (admins).
    async fn update_group(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        input: UpdateGroupInput,
    ) -> async_graphql::Result<Chat> {
        let id = parse_id("chatId", &chat_id)?;
        Ok(Chat(
            chats::update(
                ctx.app(),
                ctx.viewer()?,
                id,
                ChatChanges {
                    name: input.name,
                    description: input.description,
                    anyone_can_enqueue: input.anyone_can_enqueue,
                },
            )
            .await?,
        ))
    }

    /// Adds people by username, email or id (admins); returns how many were newly added.
    async fn add_members(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        identifiers: Vec<String>,
    ) -> async_graphql::Result<u64> {
        let id = parse_id("chatId", &chat_id)?;
        Ok(members::add_members(ctx.app(), ctx.viewer()?, id, &identifiers).await?)
    }

    /// Removes a member (admins; only the owner removes admins; the owner cannot be removed).
    async fn remove_member(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        change_member(ctx, chat_id, user_id, MemberChange::Remove).await
    }

    /// Makes a member an admin (admins).
    async fn promote_admin(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        change_member(ctx, chat_id, user_id, MemberChange::Admin(true)).await
    }

    /// Makes an admin a plain member again (admins; the owner cannot be demoted).
    async fn demote_admin(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        change_member(ctx, chat_id, user_id, MemberChange::Admin(false)).await
    }

    /// Leaves a group or room; an owner's ownership passes to the oldest admin, else the oldest member.
    async fn leave_chat(&self, ctx: &Context<'_>, chat_id: ID) -> async_graphql::Result<bool> {
        members::leave(ctx.app(), ctx.viewer()?, parse_id("chatId", &chat_id)?).await?;
        Ok(true)
    }

    /// Archives a chat for the caller only.
    async fn archive_chat(&self, ctx: &Context<'_>, chat_id: ID) -> async_graphql::Result<Chat> {
        set_archived(ctx, chat_id, true).await
    }

    /// Brings an archived chat back into the caller's list.
    async fn unarchive_chat(&self, ctx: &Context<'_>, chat_id: ID) -> async_graphql::Result<Chat> {
        set_archived(ctx, chat_id, false).await
    }

    /// Mutes or unmutes a member (admins); muted members cannot post.
    async fn mute_member(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        user_id: ID,
        muted: bool,
    ) -> async_graphql::Result<bool> {
        change_member(ctx, chat_id, user_id, MemberChange::Muted(muted)).await
    }

    /// Creates a room with the caller as owner.
    async fn create_room(
        &self,
        ctx: &Context<'_>,
        input: CreateRoomInput,
    ) -> async_graphql::Result<Chat> {
        let new = NewChat {
            name: input.name,
            description: input.description,
            members: Vec::new(),
            is_private: input.is_private,
            anyone_can_enqueue: input.anyone_can_enqueue,
        };
        Ok(Chat(rooms::create(ctx.app(), ctx.viewer()?, new).await?))
    }

    /// Joins a public room, or a private one the caller was invited to.
    async fn join_room(&self, ctx: &Context<'_>, room_id: ID) -> async_graphql::Result<Chat> {
        Ok(Chat(
            rooms::join(ctx.app(), ctx.viewer()?, parse_id("roomId", &room_id)?).await?,
        ))
    }

    /// Leaves a room.
    async fn leave_room(&self, ctx: &Context<'_>, room_id: ID) -> async_graphql::Result<bool> {
        rooms::leave(ctx.app(), ctx.viewer()?, parse_id("roomId", &room_id)?).await?;
        Ok(true)
    }

    /// Invites people to a room (admins); returns how many new invites were made.
    async fn invite_to_room(
        &self,
        ctx: &Context<'_>,
        room_id: ID,
        identifiers: Vec<String>,
    ) -> async_graphql::Result<u64> {
        let id = parse_id("roomId", &room_id)?;
        Ok(rooms::invite(ctx.app(), ctx.viewer()?, id, &identifiers).await?)
    }
}
