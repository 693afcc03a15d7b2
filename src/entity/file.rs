//! `files`: an uploaded file. The bytes are in storage under `storage_key` (generated); the row
//! keeps the sanitised original name, the type detected from the bytes, and what it belongs to.
use sea_orm::entity::prelude::*;

/// What a file was uploaded for; decides who may download it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Purpose {
    /// A message attachment (or one waiting to be attached): the uploader and chat members.
    #[sea_orm(string_value = "attachment")]
    Attachment,
    /// A profile image: public.
    #[sea_orm(string_value = "avatar")]
    Avatar,
    /// A group or room image: members (and anyone for public rooms).
    #[sea_orm(string_value = "chat_image")]
    ChatImage,
    /// A music track: whoever may see the track.
    #[sea_orm(string_value = "track")]
    Track,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub uploader_id: Option<Uuid>,
    pub purpose: Purpose,
    pub storage_key: String,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    pub chat_id: Option<Uuid>,
    pub message_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
