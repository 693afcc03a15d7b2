//! `tracks`: music uploaded to the library, optionally in a room.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tracks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub file_id: Uuid,
    pub room_id: Option<Uuid>,
    pub uploader_id: Option<Uuid>,
    pub title: String,
    /// Whole seconds, rounded from `duration_ms`.
    pub duration_seconds: Option<i32>,
    /// The playable length read from the file; `None` when it could not be read.
    pub duration_ms: Option<i64>,
    /// From the file's tags.
    pub artist: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
