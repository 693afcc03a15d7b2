//! Threads: a reply in a thread is a message of its chat (on the chat's `seq` line, so live
//! delivery and gap-filling stay as they are) with `thread_root_id` naming the message that
//! started the thread; the chat's main timeline leaves those out. `thread_follows` holds who
//! follows a thread and how far they read it.
use sea_orm_migration::{prelude::*, schema::*};

use super::{m20261122_000001_create_user::User, m20261122_000004_create_message::Message};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    ThreadRootId,
}

#[derive(DeriveIden, Clone, Copy)]
enum ThreadFollow {
    #[sea_orm(iden = "thread_follows")]
    Table,
    RootId,
    UserId,
    ChatId,
    LastReadSeq,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Message::Table)
                    .add_column(uuid_null(Added::ThreadRootId))
                    .to_owned(),
            )
            .await?;
        // A thread's replies in order.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_messages_thread_seq")
                    .table(Message::Table)
                    .col(Added::ThreadRootId)
                    .col(Message::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ThreadFollow::Table)
                    .if_not_exists()
                    .col(uuid(ThreadFollow::RootId))
                    .col(uuid(ThreadFollow::UserId))
                    .col(uuid(ThreadFollow::ChatId))
                    .col(big_integer(ThreadFollow::LastReadSeq))
                    .col(timestamp_with_time_zone(ThreadFollow::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ThreadFollow::RootId)
                            .col(ThreadFollow::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_thread_follows_root")
                            .from(ThreadFollow::Table, ThreadFollow::RootId)
                            .to(Message::Table, Message::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_thread_follows_user")
                            .from(ThreadFollow::Table, ThreadFollow::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_thread_follows_user")
                    .table(ThreadFollow::Table)
                    .col(ThreadFollow::UserId)
                    .col(ThreadFollow::ChatId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ThreadFollow::Table).to_owned())
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_messages_thread_seq")
                    .table(Message::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Message::Table)
                    .drop_column(Added::ThreadRootId)
                    .to_owned(),
            )
            .await
    }
}
