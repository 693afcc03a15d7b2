//! Connection-level subscriptions that need no chat: a heartbeat clients use to check that a
//! socket (and every proxy on its way) really delivers.
use std::time::Duration;

use async_graphql::{Context, Subscription, futures_util::Stream};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use crate::error::AppError;

/// System subscriptions.
#[derive(Default)]
pub struct SystemSubscription;

#[Subscription]
impl SystemSubscription {
    /// The server's clock every `intervalMs` milliseconds (100–60000), `count` times (1–1000),
    /// then completes.
    async fn heartbeat(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 1000)] interval_ms: i32,
        #[graphql(default = 1)] count: i32,
    ) -> async_graphql::Result<impl Stream<Item = DateTime<Utc>> + use<>> {
        ctx.viewer()?;
        if !(100..=60_000).contains(&interval_ms) {
            return Err(AppError::bad_input("intervalMs", "intervalMs must be 100–60000").into());
        }
        if !(1..=1000).contains(&count) {
            return Err(AppError::bad_input("count", "count must be 1–1000").into());
        }
        let every = Duration::from_millis(interval_ms as u64);
        Ok(async_graphql::futures_util::stream::unfold(
            0,
            move |sent| async move {
                if sent >= count {
                    return None;
                }
                if sent > 0 {
                    tokio::time::sleep(every).await;
                }
                Some((Utc::now(), sent + 1))
            },
        ))
    }
}
