//! Conversations of every kind (direct, group, room) in one table so all share one message
//! pipeline; members carry role, mute, archive and read markers; invites gate private rooms.
use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000001_create_user::User;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Chat::Table)
                    .if_not_exists()
                    .col(uuid(Chat::Id).primary_key())
                    .col(string_len(Chat::Kind, 10))
                    .col(string_len_null(Chat::Name, 100))
                    .col(string_len_null(Chat::Description, 1000))
                    .col(string_null(Chat::ImageUrl))
                    .col(boolean(Chat::IsPrivate))
                    // "<smaller user id>:<larger user id>" for DIRECT chats: one chat per pair.
                    .col(string_len_null(Chat::DirectKey, 80).unique_key())
                    .col(uuid_null(Chat::CreatedBy))
                    .col(big_integer(Chat::LastSeq).default(0))
                    .col(uuid_null(Chat::LastMessageId))
                    .col(timestamp_with_time_zone(Chat::CreatedAt))
                    .col(timestamp_with_time_zone(Chat::LastActivityAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chats_created_by")
                            .from(Chat::Table, Chat::CreatedBy)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_chats_activity",
            Chat::Table,
            &[Chat::LastActivityAt, Chat::Id],
        )
        .await?;
        index(
            manager,
            "idx_chats_kind_private",
            Chat::Table,
            &[Chat::Kind, Chat::IsPrivate],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChatMember::Table)
                    .if_not_exists()
                    .col(uuid(ChatMember::ChatId))
                    .col(uuid(ChatMember::UserId))
                    .col(string_len(ChatMember::Role, 10))
                    .col(boolean(ChatMember::Muted).default(false))
                    .col(boolean(ChatMember::Archived).default(false))
                    .col(big_integer(ChatMember::LastReadSeq).default(0))
                    .col(big_integer(ChatMember::LastDeliveredSeq).default(0))
                    .col(timestamp_with_time_zone(ChatMember::JoinedAt))
                    .primary_key(
                        Index::create()
                            .col(ChatMember::ChatId)
                            .col(ChatMember::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chat_members_chat")
                            .from(ChatMember::Table, ChatMember::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chat_members_user")
                            .from(ChatMember::Table, ChatMember::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_chat_members_user",
            ChatMember::Table,
            &[ChatMember::UserId, ChatMember::ChatId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChatInvite::Table)
                    .if_not_exists()
                    .col(uuid(ChatInvite::ChatId))
                    .col(uuid(ChatInvite::UserId))
                    .col(uuid_null(ChatInvite::InvitedBy))
                    .col(timestamp_with_time_zone(ChatInvite::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ChatInvite::ChatId)
                            .col(ChatInvite::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chat_invites_chat")
                            .from(ChatInvite::Table, ChatInvite::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_chat_invites_user")
                            .from(ChatInvite::Table, ChatInvite::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChatInvite::Table.into_iden(),
            ChatMember::Table.into_iden(),
            Chat::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Creates a plain index if it does not exist.
pub async fn index<T: IntoIden + Copy, C: IntoIden + Copy>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    cols: &[C],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for col in cols {
        index.col(*col);
    }
    manager.create_index(index.to_owned()).await
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Chat {
    #[sea_orm(iden = "chats")]
    Table,
    Id,
    Kind,
    Name,
    Description,
    ImageUrl,
    IsPrivate,
    DirectKey,
    CreatedBy,
    LastSeq,
    LastMessageId,
    CreatedAt,
    LastActivityAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum ChatMember {
    #[sea_orm(iden = "chat_members")]
    Table,
    ChatId,
    UserId,
    Role,
    Muted,
    Archived,
    LastReadSeq,
    LastDeliveredSeq,
    JoinedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum ChatInvite {
    #[sea_orm(iden = "chat_invites")]
    Table,
    ChatId,
    UserId,
    InvitedBy,
    CreatedAt,
}
