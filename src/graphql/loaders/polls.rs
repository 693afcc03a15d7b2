//! Loaders for polls: a message's poll, a poll's options and its votes, batched like the rest.
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{Db, ids};
use crate::{
    domain::polls,
    entity::poll::{self, option, vote},
    error::AppError,
};

key!(/// The poll of a message.
    PollOf);
key!(/// A poll's options, by position.
    OptionsOf);
key!(/// A poll's votes, oldest first.
    VotesOf);

impl Loader<PollOf> for Db {
    type Value = poll::Model;
    type Error = AppError;

    async fn load(&self, keys: &[PollOf]) -> Result<HashMap<PollOf, poll::Model>, AppError> {
        let rows = polls::of_messages(&self.0, &ids(keys, |k| k.0)).await?;
        Ok(rows.into_iter().map(|p| (PollOf(p.id), p)).collect())
    }
}

impl Loader<OptionsOf> for Db {
    type Value = Vec<option::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[OptionsOf]) -> Result<HashMap<OptionsOf, Self::Value>, AppError> {
        let mut out: HashMap<OptionsOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in polls::options_of(&self.0, &ids(keys, |k| k.0)).await? {
            out.entry(OptionsOf(row.poll_id)).or_default().push(row);
        }
        Ok(out)
    }
}

impl Loader<VotesOf> for Db {
    type Value = Vec<vote::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[VotesOf]) -> Result<HashMap<VotesOf, Self::Value>, AppError> {
        let mut out: HashMap<VotesOf, Self::Value> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in polls::votes_of(&self.0, &ids(keys, |k| k.0)).await? {
            out.entry(VotesOf(row.poll_id)).or_default().push(row);
        }
        Ok(out)
    }
}
