//! Pinned messages (per chat, shared by its members) and saved messages (per user, private).
//! A saved row has its own time-ordered id, so a user's saved list pages newest first by it.
use sea_orm_migration::{prelude::*, schema::*};

use super::{
    m20261122_000001_create_user::User, m20261122_000003_create_chat::Chat,
    m20261122_000004_create_message::Message,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum PinnedMessage {
    #[sea_orm(iden = "pinned_messages")]
    Table,
    ChatId,
    MessageId,
    PinnedBy,
    PinnedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SavedMessage {
    #[sea_orm(iden = "saved_messages")]
    Table,
    Id,
    UserId,
    MessageId,
    SavedAt,
}

fn cascade(
    name: &str,
    from: (impl IntoIden, impl IntoIden),
    to: (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(from.0, from.1)
        .to(to.0, to.1)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PinnedMessage::Table)
                    .if_not_exists()
                    .col(uuid(PinnedMessage::ChatId))
                    .col(uuid(PinnedMessage::MessageId))
                    .col(uuid_null(PinnedMessage::PinnedBy))
                    .col(timestamp_with_time_zone(PinnedMessage::PinnedAt))
                    .primary_key(
                        Index::create()
                            .col(PinnedMessage::ChatId)
                            .col(PinnedMessage::MessageId),
                    )
                    .foreign_key(&mut cascade(
                        "fk_pinned_messages_chat",
                        (PinnedMessage::Table, PinnedMessage::ChatId),
                        (Chat::Table, Chat::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_pinned_messages_message",
                        (PinnedMessage::Table, PinnedMessage::MessageId),
                        (Message::Table, Message::Id),
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_pinned_messages_by")
                            .from(PinnedMessage::Table, PinnedMessage::PinnedBy)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SavedMessage::Table)
                    .if_not_exists()
                    .col(uuid(SavedMessage::Id).primary_key())
                    .col(uuid(SavedMessage::UserId))
                    .col(uuid(SavedMessage::MessageId))
                    .col(timestamp_with_time_zone(SavedMessage::SavedAt))
                    .foreign_key(&mut cascade(
                        "fk_saved_messages_user",
                        (SavedMessage::Table, SavedMessage::UserId),
                        (User::Table, User::Id),
                    ))
                    .foreign_key(&mut cascade(
                        "fk_saved_messages_message",
                        (SavedMessage::Table, SavedMessage::MessageId),
                        (Message::Table, Message::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        // One row per user and message; also the lookup of `isSaved`.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .unique()
                    .name("idx_saved_messages_user_message")
                    .table(SavedMessage::Table)
                    .col(SavedMessage::UserId)
                    .col(SavedMessage::MessageId)
                    .to_owned(),
            )
            .await?;
        // A user's saved list, newest first.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_saved_messages_user_id")
                    .table(SavedMessage::Table)
                    .col(SavedMessage::UserId)
                    .col(SavedMessage::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SavedMessage::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PinnedMessage::Table).to_owned())
            .await
    }
}
