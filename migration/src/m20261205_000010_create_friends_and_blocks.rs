//! People: friendships and blocks. A friendship is one row per pair of users, the smaller id
//! first (`user_a < user_b`), so two people asking each other at once meet on one primary key:
//! the second ask finds the first and accepts it. `requested_by` says who asked; `accepted_at`
//! is set once the other accepted. A block is one row per blocker and blocked user.
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
                    .table(Friendship::Table)
                    .if_not_exists()
                    .col(uuid(Friendship::UserA))
                    .col(uuid(Friendship::UserB))
                    .col(uuid(Friendship::RequestedBy))
                    .col(timestamp_with_time_zone(Friendship::CreatedAt))
                    .col(timestamp_with_time_zone_null(Friendship::AcceptedAt))
                    .primary_key(
                        Index::create()
                            .col(Friendship::UserA)
                            .col(Friendship::UserB),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_friendships_user_a")
                            .from(Friendship::Table, Friendship::UserA)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_friendships_user_b")
                            .from(Friendship::Table, Friendship::UserB)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The primary key serves lookups by `user_a`; this one serves those by `user_b`.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_friendships_user_b")
                    .table(Friendship::Table)
                    .col(Friendship::UserB)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Block::Table)
                    .if_not_exists()
                    .col(uuid(Block::BlockerId))
                    .col(uuid(Block::BlockedId))
                    .col(timestamp_with_time_zone(Block::CreatedAt))
                    .primary_key(Index::create().col(Block::BlockerId).col(Block::BlockedId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocks_blocker")
                            .from(Block::Table, Block::BlockerId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_blocks_blocked")
                            .from(Block::Table, Block::BlockedId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Block::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Friendship::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Friendship {
    #[sea_orm(iden = "friendships")]
    Table,
    UserA,
    UserB,
    RequestedBy,
    CreatedAt,
    AcceptedAt,
}

#[derive(DeriveIden)]
pub enum Block {
    #[sea_orm(iden = "blocks")]
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}
