//! `messages`: `seq` orders a chat's messages (gap-free, assigned in commit order); deletion is
//! soft (`deleted_at`) so history, cursors and replies stay intact.
use sea_orm::entity::prelude::*;

/// What a message carries.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    async_graphql::Enum,
    serde::Serialize,
    serde::Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(10))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MessageKind {
    /// Plain text.
    #[sea_orm(string_value = "TEXT")]
    Text,
    /// An image attachment.
    #[sea_orm(string_value = "IMAGE")]
    Image,
    /// Any other file.
    #[sea_orm(string_value = "FILE")]
    File,
    /// An audio file or voice note.
    #[sea_orm(string_value = "AUDIO")]
    Audio,
    /// Written by the server (member joined, …).
    #[sea_orm(string_value = "SYSTEM")]
    System,
    /// A poll (`Message.poll`); the text is its question.
    #[sea_orm(string_value = "POLL")]
    Poll,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub chat_id: Uuid,
    pub seq: i64,
    pub sender_id: Option<Uuid>,
    pub kind: MessageKind,
    #[sea_orm(column_type = "Text", nullable)]
    pub content: Option<String>,
    pub reply_to_id: Option<Uuid>,
    pub forwarded_from_message_id: Option<Uuid>,
    pub forwarded_from_sender_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub edited_at: Option<DateTimeUtc>,
    pub deleted_at: Option<DateTimeUtc>,
    /// Set on a reply in a thread: the message that started it.
    pub thread_root_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
