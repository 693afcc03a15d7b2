//! Attention: who a message mentions (`message_mentions`, one row per mentioned member, so a
//! chat's unread mentions are counted like its unread messages), how each member wants to be
//! notified of a chat (`notify_level`, `notifications_muted_until`), which message a notification
//! points at, and who may see a user's online state (`presence_visibility`).
use sea_orm_migration::{prelude::*, schema::*};

use super::{
    m20261122_000001_create_user::User, m20261122_000003_create_chat::ChatMember,
    m20261122_000004_create_message::Message, m20261205_000011_create_notification::Notification,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum MessageMention {
    #[sea_orm(iden = "message_mentions")]
    Table,
    MessageId,
    UserId,
    ChatId,
    Seq,
    ByName,
}

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    NotifyLevel,
    NotificationsMutedUntil,
    MessageId,
    PresenceVisibility,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MessageMention::Table)
                    .if_not_exists()
                    .col(uuid(MessageMention::MessageId))
                    .col(uuid(MessageMention::UserId))
                    .col(uuid(MessageMention::ChatId))
                    .col(big_integer(MessageMention::Seq))
                    .col(boolean(MessageMention::ByName))
                    .primary_key(
                        Index::create()
                            .col(MessageMention::MessageId)
                            .col(MessageMention::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_message_mentions_message")
                            .from(MessageMention::Table, MessageMention::MessageId)
                            .to(Message::Table, Message::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_message_mentions_user")
                            .from(MessageMention::Table, MessageMention::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A member's mentions in a chat after their read marker.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_message_mentions_user_chat_seq")
                    .table(MessageMention::Table)
                    .col(MessageMention::UserId)
                    .col(MessageMention::ChatId)
                    .col(MessageMention::Seq)
                    .to_owned(),
            )
            .await?;
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMember::Table)
                    .add_column(string_len(Added::NotifyLevel, 10).default("ALL"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ChatMember::Table)
                    .add_column(timestamp_with_time_zone_null(
                        Added::NotificationsMutedUntil,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Notification::Table)
                    .add_column(uuid_null(Added::MessageId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(User::Table)
                    .add_column(string_len(Added::PresenceVisibility, 10).default("EVERYONE"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (User::Table.into_iden(), Added::PresenceVisibility),
            (Notification::Table.into_iden(), Added::MessageId),
            (
                ChatMember::Table.into_iden(),
                Added::NotificationsMutedUntil,
            ),
            (ChatMember::Table.into_iden(), Added::NotifyLevel),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        manager
            .drop_table(Table::drop().table(MessageMention::Table).to_owned())
            .await
    }
}
