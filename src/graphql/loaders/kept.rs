//! Loaders for pinned and saved messages, batched like the rest.
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{Db, ids};
use crate::{
    domain::{pins, saved},
    entity::message,
    error::AppError,
};

key!(/// The messages pinned in a chat, most recently pinned first.
    PinsOf);
key!(/// Whether a message is pinned.
    PinnedNow);

/// Whether `user` saved `message`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct SavedBy {
    pub user: Uuid,
    pub message: Uuid,
}

impl Loader<PinsOf> for Db {
    type Value = Vec<message::Model>;
    type Error = AppError;

    async fn load(&self, keys: &[PinsOf]) -> Result<HashMap<PinsOf, Self::Value>, AppError> {
        let mut out: HashMap<PinsOf, Self::Value> = keys.iter().map(|k| (*k, Vec::new())).collect();
        for (pin, message) in pins::pinned_in(&self.0, &ids(keys, |k| k.0)).await? {
            out.entry(PinsOf(pin.chat_id)).or_default().push(message);
        }
        Ok(out)
    }
}

impl Loader<PinnedNow> for Db {
    type Value = bool;
    type Error = AppError;

    async fn load(&self, keys: &[PinnedNow]) -> Result<HashMap<PinnedNow, bool>, AppError> {
        let pinned = pins::which_pinned(&self.0, &ids(keys, |k| k.0)).await?;
        Ok(keys.iter().map(|k| (*k, pinned.contains(&k.0))).collect())
    }
}

impl Loader<SavedBy> for Db {
    type Value = bool;
    type Error = AppError;

    async fn load(&self, keys: &[SavedBy]) -> Result<HashMap<SavedBy, bool>, AppError> {
        let mut by_user: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_user.entry(key.user).or_default().push(key.message);
        }
        let mut out: HashMap<SavedBy, bool> = keys.iter().map(|k| (*k, false)).collect();
        for (user, messages) in by_user {
            for message in saved::which_saved(&self.0, user, &messages).await? {
                out.insert(SavedBy { user, message }, true);
            }
        }
        Ok(out)
    }
}
