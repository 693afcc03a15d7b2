//! Loaders for threads: what a root shows of its thread, and the caller's following and unread
//! replies, batched like the rest.
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{Db, ids};
use crate::{domain::threads, error::AppError};

key!(/// What a root message shows of its thread.
    ThreadStatsOf);

/// `user`'s state in the thread of `root`: whether they follow it, and its unread replies.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ThreadStateOf {
    pub user: Uuid,
    pub root: Uuid,
}

/// Following and unread replies.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadState {
    pub following: bool,
    pub unread: u64,
}

impl Loader<ThreadStatsOf> for Db {
    type Value = threads::Stats;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[ThreadStatsOf],
    ) -> Result<HashMap<ThreadStatsOf, threads::Stats>, AppError> {
        let mut stats = threads::stats(&self.0, &ids(keys, |k| k.0)).await?;
        Ok(keys
            .iter()
            .map(|k| (*k, stats.remove(&k.0).unwrap_or_default()))
            .collect())
    }
}

impl Loader<ThreadStateOf> for Db {
    type Value = ThreadState;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[ThreadStateOf],
    ) -> Result<HashMap<ThreadStateOf, ThreadState>, AppError> {
        let mut by_user: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for key in keys {
            by_user.entry(key.user).or_default().push(key.root);
        }
        let mut out: HashMap<ThreadStateOf, ThreadState> =
            keys.iter().map(|k| (*k, ThreadState::default())).collect();
        for (user, roots) in by_user {
            let follows = threads::follows(&self.0, user, &roots).await?;
            let markers: Vec<(Uuid, i64)> = follows
                .iter()
                .map(|f| (f.root_id, f.last_read_seq))
                .collect();
            let unread = threads::unread(&self.0, user, &markers).await?;
            for follow in follows {
                let state = ThreadState {
                    following: true,
                    unread: unread.get(&follow.root_id).copied().unwrap_or(0),
                };
                out.insert(
                    ThreadStateOf {
                        user,
                        root: follow.root_id,
                    },
                    state,
                );
            }
        }
        Ok(out)
    }
}
