//! Business rules per area. Plain Rust in, `AppError` out; no GraphQL or HTTP types here.
//! Every entry point takes the caller (`Viewer`) and checks what it may touch; for chats and
//! messages that check lives in one place, `access`. Writes run through `in_transaction` or
//! `autocommit`, which publish the events a write recorded once it is committed (`outbox`);
//! sends on SQLite run through the group-commit writer (`messages::group_commit`), which does the
//! same for its batches.
pub mod access;
pub mod accounts;
pub mod blocks;
pub mod chat_settings;
pub mod chats;
pub mod files;
pub mod friends;
pub mod history;
pub mod live;
pub mod members;
pub mod mentions;
pub mod messages;
pub mod music;
pub mod notifications;
mod outbox;
pub mod paging;
pub mod pins;
pub mod playback;
pub mod polls;
pub mod presence;
pub mod previews;
pub mod privacy;
pub mod push;
pub mod reactions;
pub mod reads;
pub mod rooms;
pub mod saved;
pub mod search;
pub mod session_cache;
pub mod sessions;
pub mod threads;
pub mod typing;
pub mod users;
pub mod validate;
pub mod voice;

pub use crate::auth::Viewer;
pub use outbox::{Outbox, autocommit, in_transaction};
