//! `push_deliveries`: a push waiting to be sent to one subscription; gone once sent or given up.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "push_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub subscription_id: Uuid,
    /// Whom it is for (read at delivery time: someone online gets no push).
    pub user_id: Uuid,
    /// The JSON sent, before encryption.
    pub payload: String,
    /// Attempts that failed and may be retried.
    pub attempts: i32,
    /// When it is next due (ms since the epoch); a claim moves it a lease ahead.
    pub next_attempt_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
