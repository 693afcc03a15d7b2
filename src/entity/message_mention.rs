//! `message_mentions`: one row per member a message mentions, with the message's chat and `seq`
//! so a member's unread mentions in a chat are the rows after their read marker.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_mentions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub message_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub chat_id: Uuid,
    pub seq: i64,
    /// Named (`@username`), not only reached through `@all`.
    pub by_name: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
