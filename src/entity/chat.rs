//! `chats`: one row per conversation of any kind. `last_seq` hands out message sequence numbers;
//! `last_message_id` and `last_activity_at` keep the chat list one indexed query.
use sea_orm::entity::prelude::*;

/// What kind of conversation a chat is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, async_graphql::Enum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(10))")]
pub enum ChatKind {
    /// Exactly two people.
    #[sea_orm(string_value = "DIRECT")]
    Direct,
    /// A named group with admins.
    #[sea_orm(string_value = "GROUP")]
    Group,
    /// A listening room, public or private, that people join.
    #[sea_orm(string_value = "ROOM")]
    Room,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: ChatKind,
    pub name: Option<String>,
    pub description: Option<String>,
    pub image_url: Option<String>,
    pub is_private: bool,
    #[sea_orm(unique)]
    pub direct_key: Option<String>,
    pub created_by: Option<Uuid>,
    pub last_seq: i64,
    pub last_message_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub last_activity_at: DateTimeUtc,
    /// Rooms: whether any member may add tracks to the queue (otherwise admins only).
    pub anyone_can_enqueue: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::chat_member::Entity")]
    Member,
}

impl Related<super::chat_member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Member.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
