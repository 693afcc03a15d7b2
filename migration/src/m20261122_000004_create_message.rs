//! Messages, ordered inside a chat by a gap-free sequence number assigned in the sending
//! transaction (stable cursors, cheap unread counts against per-member read markers), and reactions.
use sea_orm_migration::{prelude::*, schema::*};

use super::{
    m20261122_000001_create_user::User,
    m20261122_000003_create_chat::{Chat, index},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Message::Table)
                    .if_not_exists()
                    .col(uuid(Message::Id).primary_key())
                    .col(uuid(Message::ChatId))
                    .col(big_integer(Message::Seq))
                    .col(uuid_null(Message::SenderId))
                    .col(string_len(Message::Kind, 10))
                    .col(text_null(Message::Content))
                    .col(uuid_null(Message::ReplyToId))
                    .col(uuid_null(Message::ForwardedFromMessageId))
                    .col(uuid_null(Message::ForwardedFromSenderId))
                    .col(timestamp_with_time_zone(Message::CreatedAt))
                    .col(timestamp_with_time_zone_null(Message::EditedAt))
                    .col(timestamp_with_time_zone_null(Message::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_chat")
                            .from(Message::Table, Message::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_sender")
                            .from(Message::Table, Message::SenderId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .unique()
                    .name("idx_messages_chat_seq")
                    .table(Message::Table)
                    .col(Message::ChatId)
                    .col(Message::Seq)
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_messages_sender",
            Message::Table,
            &[Message::SenderId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reaction::Table)
                    .if_not_exists()
                    .col(uuid(Reaction::MessageId))
                    .col(uuid(Reaction::UserId))
                    .col(string_len(Reaction::Emoji, 64))
                    .col(timestamp_with_time_zone(Reaction::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(Reaction::MessageId)
                            .col(Reaction::UserId)
                            .col(Reaction::Emoji),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reactions_message")
                            .from(Reaction::Table, Reaction::MessageId)
                            .to(Message::Table, Message::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reactions_user")
                            .from(Reaction::Table, Reaction::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Reaction::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Message::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Message {
    #[sea_orm(iden = "messages")]
    Table,
    Id,
    ChatId,
    Seq,
    SenderId,
    Kind,
    Content,
    ReplyToId,
    ForwardedFromMessageId,
    ForwardedFromSenderId,
    CreatedAt,
    EditedAt,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Reaction {
    #[sea_orm(iden = "message_reactions")]
    Table,
    MessageId,
    UserId,
    Emoji,
    CreatedAt,
}
