//! Polls: a poll is a message (kind `POLL`, its question as the text) with its options and
//! votes. `closed_at` is set when the creator closes it or its `closes_at` passes (the sweep
//! finds those by the index on `(closed_at, closes_at)`).
use sea_orm_migration::{prelude::*, schema::*};

use super::{m20261122_000001_create_user::User, m20261122_000004_create_message::Message};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Poll {
    #[sea_orm(iden = "polls")]
    Table,
    Id,
    ChatId,
    Multiple,
    Anonymous,
    ClosesAt,
    ClosedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PollOption {
    #[sea_orm(iden = "poll_options")]
    Table,
    PollId,
    Position,
    Text,
}

#[derive(DeriveIden, Clone, Copy)]
enum PollVote {
    #[sea_orm(iden = "poll_votes")]
    Table,
    PollId,
    UserId,
    Position,
    VotedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Poll::Table)
                    .if_not_exists()
                    .col(uuid(Poll::Id).primary_key())
                    .col(uuid(Poll::ChatId))
                    .col(boolean(Poll::Multiple))
                    .col(boolean(Poll::Anonymous))
                    .col(timestamp_with_time_zone_null(Poll::ClosesAt))
                    .col(timestamp_with_time_zone_null(Poll::ClosedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_polls_message")
                            .from(Poll::Table, Poll::Id)
                            .to(Message::Table, Message::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_polls_closing")
                    .table(Poll::Table)
                    .col(Poll::ClosedAt)
                    .col(Poll::ClosesAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PollOption::Table)
                    .if_not_exists()
                    .col(uuid(PollOption::PollId))
                    .col(small_integer(PollOption::Position))
                    .col(string_len(PollOption::Text, 200))
                    .primary_key(
                        Index::create()
                            .col(PollOption::PollId)
                            .col(PollOption::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_poll_options_poll")
                            .from(PollOption::Table, PollOption::PollId)
                            .to(Poll::Table, Poll::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PollVote::Table)
                    .if_not_exists()
                    .col(uuid(PollVote::PollId))
                    .col(uuid(PollVote::UserId))
                    .col(small_integer(PollVote::Position))
                    .col(timestamp_with_time_zone(PollVote::VotedAt))
                    .primary_key(
                        Index::create()
                            .col(PollVote::PollId)
                            .col(PollVote::UserId)
                            .col(PollVote::Position),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_poll_votes_poll")
                            .from(PollVote::Table, PollVote::PollId)
                            .to(Poll::Table, Poll::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_poll_votes_user")
                            .from(PollVote::Table, PollVote::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            PollVote::Table.into_iden(),
            PollOption::Table.into_iden(),
            Poll::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
