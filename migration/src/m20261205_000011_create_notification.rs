//! Notifications, stored per user: what happened to them while they may not have been looking
//! (a friend request, an acceptance, being added to a group, a room invite). `read_at` is set
//! when they mark it read; the unread ones are counted by the index on (user, read_at).
use sea_orm_migration::{prelude::*, schema::*};

use super::{m20261122_000001_create_user::User, m20261122_000003_create_chat::Chat};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Notification::Table)
                    .if_not_exists()
                    .col(uuid(Notification::Id).primary_key())
                    .col(uuid(Notification::UserId))
                    .col(string_len(Notification::Kind, 20))
                    .col(uuid_null(Notification::ActorId))
                    .col(uuid_null(Notification::ChatId))
                    .col(timestamp_with_time_zone(Notification::CreatedAt))
                    .col(timestamp_with_time_zone_null(Notification::ReadAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_user")
                            .from(Notification::Table, Notification::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_actor")
                            .from(Notification::Table, Notification::ActorId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_notifications_chat")
                            .from(Notification::Table, Notification::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A user's notifications, newest first (ids are time-ordered UUIDv7).
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_notifications_user_id")
                    .table(Notification::Table)
                    .col(Notification::UserId)
                    .col(Notification::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_notifications_user_read")
                    .table(Notification::Table)
                    .col(Notification::UserId)
                    .col(Notification::ReadAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Notification::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Notification {
    #[sea_orm(iden = "notifications")]
    Table,
    Id,
    UserId,
    Kind,
    ActorId,
    ChatId,
    CreatedAt,
    ReadAt,
}
