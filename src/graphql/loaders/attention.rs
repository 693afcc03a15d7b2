//! Loaders for who a message mentions and whether a user is a friend of the caller (presence
//! privacy), batched like the rest.
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{Db, ids};
use crate::{
    domain::{friends, mentions},
    error::AppError,
};

key!(/// The members a message names, in no particular order.
    MentionsOf);
key!(/// Whether a message reached members through `@all`.
    ReachesAll);

/// Whether `other` is a friend of `me`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct FriendOf {
    pub me: Uuid,
    pub other: Uuid,
}

impl Loader<MentionsOf> for Db {
    type Value = Vec<Uuid>;
    type Error = AppError;

    async fn load(&self, keys: &[MentionsOf]) -> Result<HashMap<MentionsOf, Vec<Uuid>>, AppError> {
        let rows = mentions::named_in(&self.0.db, &ids(keys, |k| k.0)).await?;
        let mut out: HashMap<MentionsOf, Vec<Uuid>> =
            keys.iter().map(|k| (*k, Vec::new())).collect();
        for row in rows {
            out.entry(MentionsOf(row.message_id))
                .or_default()
                .push(row.user_id);
        }
        Ok(out)
    }
}

impl Loader<ReachesAll> for Db {
    type Value = bool;
    type Error = AppError;

    async fn load(&self, keys: &[ReachesAll]) -> Result<HashMap<ReachesAll, bool>, AppError> {
        let reaching = mentions::reaching_all(&self.0.db, &ids(keys, |k| k.0)).await?;
        Ok(keys.iter().map(|k| (*k, reaching.contains(&k.0))).collect())
    }
}

impl Loader<FriendOf> for Db {
    type Value = bool;
    type Error = AppError;

    async fn load(&self, keys: &[FriendOf]) -> Result<HashMap<FriendOf, bool>, AppError> {
        let mut by_me: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_me.entry(key.me).or_default().push(key.other);
        }
        let mut out: HashMap<FriendOf, bool> = keys.iter().map(|k| (*k, false)).collect();
        for (me, others) in by_me {
            for other in friends::among(&self.0.db, me, &others).await? {
                out.insert(FriendOf { me, other }, true);
            }
        }
        Ok(out)
    }
}
