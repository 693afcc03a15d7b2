//! Accounts: one row per person, unique by case-folded username and by (lower-cased) email.
use sea_orm_migration::{prelude::*, schema::*};

/// PostgreSQL's name for the unique constraint on `username_key` below.
pub const USERS_USERNAME: &str = "users_username_key_key";
/// PostgreSQL's name for the unique constraint on `email` below.
pub const USERS_EMAIL: &str = "users_email_key";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(User::Table)
                    .if_not_exists()
                    .col(uuid(User::Id).primary_key())
                    .col(string_len(User::Username, 32))
                    .col(string_len_uniq(User::UsernameKey, 32))
                    .col(string_len_uniq(User::Email, 254))
                    .col(string(User::PasswordHash))
                    .col(string_len_null(User::FullName, 100))
                    .col(string_len_null(User::Bio, 500))
                    .col(string_null(User::AvatarUrl))
                    .col(boolean(User::IsStaff).default(false))
                    .col(timestamp_with_time_zone_null(User::LastSeenAt))
                    .col(timestamp_with_time_zone(User::CreatedAt))
                    .col(timestamp_with_time_zone(User::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(User::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum User {
    #[sea_orm(iden = "users")]
    Table,
    Id,
    Username,
    UsernameKey,
    Email,
    PasswordHash,
    FullName,
    Bio,
    AvatarUrl,
    IsStaff,
    LastSeenAt,
    CreatedAt,
    UpdatedAt,
}
