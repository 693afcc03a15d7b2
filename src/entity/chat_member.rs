//! `chat_members`: who is in a chat, with role, mute, per-member archive flag and the read and
//! delivery markers (sequence numbers) that message status and unread counts derive from.
use sea_orm::entity::prelude::*;

/// A member's role in a chat.
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
pub enum MemberRole {
    /// Created the chat (or inherited it); an admin who cannot be removed or demoted.
    #[sea_orm(string_value = "OWNER")]
    Owner,
    /// May manage members and settings.
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    /// A plain member.
    #[sea_orm(string_value = "MEMBER")]
    Member,
}

impl MemberRole {
    /// Owners and admins.
    pub fn is_admin(self) -> bool {
        matches!(self, Self::Owner | Self::Admin)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub chat_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub role: MemberRole,
    pub muted: bool,
    pub archived: bool,
    pub last_read_seq: i64,
    pub last_delivered_seq: i64,
    pub joined_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::chat::Entity",
        from = "Column::ChatId",
        to = "super::chat::Column::Id",
        on_delete = "Cascade"
    )]
    Chat,
}

impl Related<super::chat::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Chat.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
