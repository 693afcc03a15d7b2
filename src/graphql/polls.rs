//! Poll operations: posting a poll, voting, taking a vote back, closing.
use async_graphql::{Context, ID, InputObject, Object};
use chrono::{DateTime, Utc};

use super::{
    context::ContextExt,
    types::{Message, parse_id, poll::Poll},
};
use crate::{
    domain::polls::{self, NewPoll},
    graphql::loaders::Source,
};

/// A new poll.
#[derive(InputObject)]
pub struct CreatePollInput {
    /// The chat to post it in.
    pub chat_id: ID,
    /// 1–300 characters; the message's `content`.
    pub question: String,
    /// 2–10 different options, 1–100 characters each.
    pub options: Vec<String>,
    /// Voters may choose several options.
    #[graphql(default = false)]
    pub multiple: bool,
    /// Who voted for what is not shown.
    #[graphql(default = false)]
    pub anonymous: bool,
    /// When it closes by itself (within a year); open until its creator closes it if omitted.
    pub closes_at: Option<DateTime<Utc>>,
}

/// Poll mutations.
#[derive(Default)]
pub struct PollMutation;

#[Object]
impl PollMutation {
    /// Posts a poll in a chat (as a message of kind POLL); returns the message.
    async fn create_poll(
        &self,
        ctx: &Context<'_>,
        input: CreatePollInput,
    ) -> async_graphql::Result<Message> {
        let new = NewPoll {
            chat_id: parse_id("chatId", &input.chat_id)?,
            question: input.question,
            options: input.options,
            multiple: input.multiple,
            anonymous: input.anonymous,
            closes_at: input.closes_at,
        };
        Ok(Message::new(
            polls::create(ctx.app(), ctx.viewer()?, new).await?,
        ))
    }

    /// Votes in an open poll (replacing my earlier vote): `options` are positions, one unless
    /// the poll is `multiple`. Members get `PollUpdated`.
    async fn vote_poll(
        &self,
        ctx: &Context<'_>,
        poll_id: ID,
        options: Vec<i32>,
    ) -> async_graphql::Result<Poll> {
        let id = parse_id("pollId", &poll_id)?;
        let poll = polls::vote(ctx.app(), ctx.viewer()?, id, &options).await?;
        Ok(Poll(poll, Source::default()))
    }

    /// Takes my vote back while the poll is open.
    async fn retract_vote(&self, ctx: &Context<'_>, poll_id: ID) -> async_graphql::Result<Poll> {
        let id = parse_id("pollId", &poll_id)?;
        let poll = polls::retract(ctx.app(), ctx.viewer()?, id).await?;
        Ok(Poll(poll, Source::default()))
    }

    /// Closes a poll I created; no more votes are taken.
    async fn close_poll(&self, ctx: &Context<'_>, poll_id: ID) -> async_graphql::Result<Poll> {
        let id = parse_id("pollId", &poll_id)?;
        let poll = polls::close(ctx.app(), ctx.viewer()?, id).await?;
        Ok(Poll(poll, Source::default()))
    }
}
