//! GraphQL output types and the helpers that map ids and cursors.
pub mod chat;
pub mod chat_prefetch;
mod connection;
pub mod cursor;
pub mod event;
mod file;
pub mod history_page;
mod message;
mod pin_events;
pub mod playback;
pub mod poll;
mod user;
pub mod voice;

pub use chat::{Chat, ChatMember};
pub use connection::{Counter, Page};
pub use event::ChatEvent;
pub use file::{Attachment, Track};
pub use message::{Message, MessageStatus, ReactionGroup};
pub use playback::{Playback, QueueEntry};
pub use user::User;

use async_graphql::ID;
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Parses a GraphQL `ID` argument into a UUID, naming the argument when it is malformed.
pub fn parse_id(field: &str, id: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str())
        .map_err(|_| AppError::bad_input(field, format!("{field} is not a valid id")))
}
