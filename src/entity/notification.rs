//! `notifications`: what happened to a user, kept until they read it (`read_at`).
use sea_orm::entity::prelude::*;

/// What a notification is about.
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
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(20))")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    /// `actor` asked me to be friends.
    #[sea_orm(string_value = "FRIEND_REQUEST")]
    FriendRequest,
    /// `actor` accepted my friend request.
    #[sea_orm(string_value = "FRIEND_ACCEPTED")]
    FriendAccepted,
    /// `actor` added me to the group `chat`.
    #[sea_orm(string_value = "ADDED_TO_GROUP")]
    AddedToGroup,
    /// `actor` invited me to the private room `chat`.
    #[sea_orm(string_value = "ROOM_INVITE")]
    RoomInvite,
    /// `actor` mentioned me in `message` of `chat`.
    #[sea_orm(string_value = "MENTION")]
    Mention,
    /// `actor` replied to my message with `message` in `chat`.
    #[sea_orm(string_value = "REPLY")]
    Reply,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    /// UUIDv7: in creation order.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Who it is for.
    pub user_id: Uuid,
    pub kind: NotificationKind,
    /// Who caused it.
    pub actor_id: Option<Uuid>,
    pub chat_id: Option<Uuid>,
    /// The message it is about (mentions and replies).
    pub message_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub read_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
