//! `voice_participants`: who holds a seat in a room's voice session, with their state (muted,
//! deafened, speaking, hand raised, muted by an admin) and, while they have no live socket
//! anywhere, since when (`away_since`, for the grace sweep).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "voice_participants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chat_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub is_muted: bool,
    pub is_deafened: bool,
    pub is_speaking: bool,
    pub hand_raised: bool,
    pub muted_by_admin: bool,
    pub joined_at: DateTimeUtc,
    pub away_since: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
