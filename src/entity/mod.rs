//! sea-orm entities, one file per table; the only place that knows table and column names.
//! The small enums stored as text also derive `async_graphql::Enum`, so the API and the database
//! share one list of values.
pub mod block;
pub mod chat;
pub mod chat_invite;
pub mod chat_member;
pub mod file;
pub mod friendship;
pub mod link_preview;
pub mod message;
pub mod message_mention;
pub mod notification;
pub mod pinned_message;
pub mod poll;
pub mod push_delivery;
pub mod push_subscription;
pub mod reaction;
pub mod refresh_token;
pub mod room_playback;
pub mod room_queue;
pub mod saved_message;
pub mod session;
pub mod thread_follow;
pub mod track;
pub mod user;
pub mod voice_participant;
