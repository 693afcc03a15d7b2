//! `polls`, `poll_options`, `poll_votes`: a poll belongs to its message (same id), has 2–10
//! options by position, and one vote row per voter and chosen option.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "polls")]
pub struct Model {
    /// The poll's message.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub chat_id: Uuid,
    /// Voters may choose several options.
    pub multiple: bool,
    /// Who voted for what is not shown.
    pub anonymous: bool,
    pub closes_at: Option<DateTimeUtc>,
    pub closed_at: Option<DateTimeUtc>,
}

impl Model {
    /// Whether votes are no longer taken at `now`.
    pub fn is_closed(&self, now: DateTimeUtc) -> bool {
        self.closed_at.is_some() || self.closes_at.is_some_and(|at| at <= now)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// One option of a poll.
pub mod option {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "poll_options")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub poll_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i16,
        pub text: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One voter's choice of one option.
pub mod vote {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "poll_votes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub poll_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: Uuid,
        #[sea_orm(primary_key, auto_increment = false)]
        pub position: i16,
        pub voted_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
