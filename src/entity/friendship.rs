//! `friendships`: one row per pair of users (`user_a < user_b`), a request until `accepted_at`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "friendships")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_a: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_b: Uuid,
    /// Who asked.
    pub requested_by: Uuid,
    pub created_at: DateTimeUtc,
    /// When the other accepted; `None` while it is a request.
    pub accepted_at: Option<DateTimeUtc>,
}

impl Model {
    /// The one of the pair who is not `me`.
    pub fn other(&self, me: Uuid) -> Uuid {
        if self.user_a == me {
            self.user_b
        } else {
            self.user_a
        }
    }
}

/// The pair's key: the smaller id first.
pub fn pair(x: Uuid, y: Uuid) -> (Uuid, Uuid) {
    if x < y { (x, y) } else { (y, x) }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
