//! `room_playback`: what a room is playing. `position_ms` holds at `updated_at` (server time);
//! while playing, the position at any later instant is `position_ms + (t - updated_at)`, and
//! `ends_at` is when the track runs out (null when paused or the length is unknown). Every
//! change bumps `version`, and writers compare-and-set on it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "room_playback")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chat_id: Uuid,
    pub track_id: Option<Uuid>,
    pub is_playing: bool,
    pub position_ms: i64,
    pub updated_at: DateTimeUtc,
    pub ends_at: Option<DateTimeUtc>,
    pub version: i64,
    pub changed_by: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
