//! Business rules per area. Plain Rust in, `AppError` out; no GraphQL or HTTP types here.
//! Every entry point takes the caller (`Viewer`) and checks what it may touch; for chats and
//! messages that check lives in one place, `access`.
pub mod access;
pub mod accounts;
pub mod chats;
pub mod files;
pub mod history;
pub mod live;
pub mod members;
pub mod messages;
pub mod music;
pub mod paging;
pub mod presence;
pub mod reactions;
pub mod reads;
pub mod rooms;
pub mod typing;
pub mod users;
pub mod validate;

pub use crate::auth::Viewer;

use std::{future::Future, pin::Pin};

use sea_orm::{DatabaseTransaction, TransactionTrait};

use crate::{error::AppResult, state::AppState};

/// Runs `work` in one database transaction: committed when it returns `Ok`, rolled back (by
/// dropping the transaction) when it returns an error, so nothing is ever half-written.
pub async fn in_transaction<T, F>(app: &AppState, work: F) -> AppResult<T>
where
    T: Send,
    F: for<'c> FnOnce(
            &'c DatabaseTransaction,
        ) -> Pin<Box<dyn Future<Output = AppResult<T>> + Send + 'c>>
        + Send,
{
    let txn = app.db.begin().await?;
    let out = work(&txn).await?;
    txn.commit().await?;
    Ok(out)
}
