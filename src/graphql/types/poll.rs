//! The `Poll` type (a poll message's options and results) and its event, `PollUpdated`.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::User;
use crate::{
    entity::poll,
    error::AppError,
    graphql::{
        context::ContextExt,
        loaders::{OptionsOf, PollOf, Source, VotesOf, users_in_order},
    },
};

/// A poll, and where its options and votes are read from.
pub struct Poll(pub poll::Model, pub Source);

/// A poll posted as a message: its question is the message's `content`.
#[Object]
impl Poll {
    /// The poll's id: the id of its message.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Voters may choose several options.
    async fn multiple(&self) -> bool {
        self.0.multiple
    }

    /// Who voted for what is not shown (counts are).
    async fn anonymous(&self) -> bool {
        self.0.anonymous
    }

    /// When it closes by itself, if it does.
    async fn closes_at(&self) -> Option<DateTime<Utc>> {
        self.0.closes_at
    }

    /// Whether votes are no longer taken.
    async fn is_closed(&self) -> bool {
        self.0.is_closed(Utc::now())
    }

    /// The options, in order, with their votes.
    async fn options(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PollOption>> {
        let loader = self.1.loader(ctx);
        let options = loader
            .load_one(OptionsOf(self.0.id))
            .await?
            .unwrap_or_default();
        let votes = loader
            .load_one(VotesOf(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(options
            .into_iter()
            .map(|option| PollOption {
                voters: votes
                    .iter()
                    .filter(|v| v.position == option.position)
                    .map(|v| v.user_id)
                    .collect(),
                option,
                anonymous: self.0.anonymous,
                source: self.1.clone(),
            })
            .collect())
    }

    /// How many people voted.
    async fn total_voters(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        let votes = self.1.loader(ctx).load_one(VotesOf(self.0.id)).await?;
        let mut voters: Vec<Uuid> = votes
            .unwrap_or_default()
            .iter()
            .map(|v| v.user_id)
            .collect();
        voters.sort();
        voters.dedup();
        Ok(voters.len() as u64)
    }

    /// The positions of the options I chose (empty when I have not voted).
    async fn my_votes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<i32>> {
        let me = ctx.viewer()?.user_id;
        let votes = self.1.loader(ctx).load_one(VotesOf(self.0.id)).await?;
        Ok(votes
            .unwrap_or_default()
            .iter()
            .filter(|v| v.user_id == me)
            .map(|v| i32::from(v.position))
            .collect())
    }
}

/// One option of a poll.
pub struct PollOption {
    option: poll::option::Model,
    voters: Vec<Uuid>,
    anonymous: bool,
    source: Source,
}

/// An option and its votes.
#[Object]
impl PollOption {
    /// Its place in the poll (0 first): what `votePoll` takes.
    async fn position(&self) -> i32 {
        i32::from(self.option.position)
    }

    /// Its text.
    async fn text(&self) -> &str {
        &self.option.text
    }

    /// How many chose it.
    async fn vote_count(&self) -> u64 {
        self.voters.len() as u64
    }

    /// Who chose it, in the order they voted; empty for an anonymous poll.
    async fn voters(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<User>> {
        if self.anonymous {
            return Ok(Vec::new());
        }
        let voters = users_in_order(self.source.loader(ctx), &self.voters).await?;
        Ok(voters.into_iter().map(User::new).collect())
    }
}

/// A poll's votes changed, or it closed.
pub struct PollUpdated {
    pub(super) chat_id: Uuid,
    pub(super) poll_id: Uuid,
    pub(super) source: Source,
}

/// A poll's results changed (a vote, a vote taken back) or it closed: show it as it is now.
#[Object]
impl PollUpdated {
    /// The chat.
    async fn chat_id(&self) -> ID {
        ID(self.chat_id.to_string())
    }

    /// The poll as it is now.
    async fn poll(&self, ctx: &Context<'_>) -> async_graphql::Result<Poll> {
        let poll = self
            .source
            .loader(ctx)
            .load_one(PollOf(self.poll_id))
            .await?;
        let poll = poll.ok_or_else(|| AppError::NotFound("poll not found".into()))?;
        Ok(Poll(poll, self.source.clone()))
    }
}
