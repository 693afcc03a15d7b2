//! `thread_follows`: who follows a thread (its root message) and how far they read it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "thread_follows")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub root_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub chat_id: Uuid,
    /// Replies up to this `seq` are read.
    pub last_read_seq: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
