//! `chat_members`: who is in a chat, with role, mute (by an admin: cannot post), per-member
//! archive flag, notification settings and the read and delivery markers (sequence numbers) that
//! message status and unread counts derive from.
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

/// Which of a chat's happenings notify a member (when its notifications are not muted).
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
#[graphql(name = "NotificationLevel")]
pub enum NotifyLevel {
    /// Mentions of me and replies to my messages.
    #[sea_orm(string_value = "ALL")]
    All,
    /// Mentions of me only (`@me`, or `@all` by an admin).
    #[sea_orm(string_value = "MENTIONS")]
    MentionsOnly,
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
    pub notify_level: NotifyLevel,
    /// Notifications of this chat are muted until then (unread messages still count).
    pub notifications_muted_until: Option<DateTimeUtc>,
}

impl Model {
    /// Whether this chat may notify the member now, of a mention (`mention`) or a reply.
    pub fn notifies(&self, mention: bool, now: DateTimeUtc) -> bool {
        let muted = self
            .notifications_muted_until
            .is_some_and(|until| until > now);
        !muted && (mention || self.notify_level == NotifyLevel::All)
    }
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
