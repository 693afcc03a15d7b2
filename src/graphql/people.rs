//! People around the caller: friends, friend requests, blocks, and who sees my presence.
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    types::{User, parse_id},
};
use crate::{
    domain::{
        blocks,
        friends::{self, FriendStatus},
        privacy,
    },
    entity::user::PresenceVisibility,
};

/// A friend request waiting for an answer.
#[derive(SimpleObject)]
pub struct FriendRequest {
    /// The other person: who asked (incoming) or who was asked (outgoing).
    pub user: User,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
}

/// Friends, requests and blocks.
#[derive(Default)]
pub struct PeopleQuery;

#[Object]
impl PeopleQuery {
    /// My friends, by username (`isOnline` and `lastSeen` on each).
    async fn friends(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let list = friends::friends(ctx.app(), ctx.viewer()?).await?;
        Ok(list.into_iter().map(User::new).collect())
    }

    /// Friend requests others sent me, newest first.
    async fn incoming_friend_requests(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<FriendRequest>> {
        requests(ctx, true).await
    }

    /// Friend requests I sent that are not answered yet, newest first.
    async fn outgoing_friend_requests(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<FriendRequest>> {
        requests(ctx, false).await
    }

    /// The users I blocked, most recent first.
    async fn blocked_users(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        let list = blocks::blocked(ctx.app(), ctx.viewer()?).await?;
        Ok(list.into_iter().map(User::new).collect())
    }
}

async fn requests(ctx: &Context<'_>, incoming: bool) -> async_graphql::Result<Vec<FriendRequest>> {
    let list = friends::requests(ctx.app(), ctx.viewer()?, incoming).await?;
    Ok(list
        .into_iter()
        .map(|r| FriendRequest {
            user: User::new(r.user),
            created_at: r.created_at,
        })
        .collect())
}

/// Asking, answering, ending; blocking.
#[derive(Default)]
pub struct PeopleMutation;

#[Object]
impl PeopleMutation {
    /// Chooses who may see my online state and last seen: `EVERYONE`, my `FRIENDS`, or
    /// `NOBODY`. Whoever watches my presence learns of the change at once.
    async fn set_presence_visibility(
        &self,
        ctx: &Context<'_>,
        visibility: PresenceVisibility,
    ) -> async_graphql::Result<User> {
        let me = privacy::set_visibility(ctx.app(), ctx.viewer()?, visibility).await?;
        Ok(User::new(me))
    }

    /// Asks a user (username, email or id) to be friends; when they already asked me, this
    /// accepts their request. Asking again changes nothing. Returns where I stand with them:
    /// `REQUEST_SENT`, or `FRIENDS`.
    async fn send_friend_request(
        &self,
        ctx: &Context<'_>,
        identifier: String,
    ) -> async_graphql::Result<FriendStatus> {
        Ok(friends::request(ctx.app(), ctx.viewer()?, &identifier).await?)
    }

    /// Accepts the friend request a user sent me.
    async fn accept_friend_request(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<FriendStatus> {
        let from = parse_id("userId", &user_id)?;
        Ok(friends::accept(ctx.app(), ctx.viewer()?, from).await?)
    }

    /// Declines the friend request a user sent me (they are not told).
    async fn decline_friend_request(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        let from = parse_id("userId", &user_id)?;
        friends::decline(ctx.app(), ctx.viewer()?, from).await?;
        Ok(true)
    }

    /// Takes back a friend request I sent.
    async fn cancel_friend_request(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
    ) -> async_graphql::Result<bool> {
        let to = parse_id("userId", &user_id)?;
        friends::cancel(ctx.app(), ctx.viewer()?, to).await?;
        Ok(true)
    }

    /// Ends a friendship.
    async fn remove_friend(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<bool> {
        let friend = parse_id("userId", &user_id)?;
        friends::remove(ctx.app(), ctx.viewer()?, friend).await?;
        Ok(true)
    }

    /// Blocks a user: they can no longer message me, send me friend requests or bring me into
    /// groups and rooms, and any friendship or request between us ends. They are not told.
    async fn block_user(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<bool> {
        let other = parse_id("userId", &user_id)?;
        blocks::block(ctx.app(), ctx.viewer()?, other).await?;
        Ok(true)
    }

    /// Lifts a block; false when the user was not blocked.
    async fn unblock_user(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<bool> {
        let other = parse_id("userId", &user_id)?;
        Ok(blocks::unblock(ctx.app(), ctx.viewer()?, other).await?)
    }
}
