//! Refresh tokens: the session row is the token family. Each row is one refresh token of a
//! session, keyed by the SHA-256 of the token (the token itself is never stored); `replaced_at`
//! is set when it is traded in for the next one, so presenting it again is recognised as reuse.
//! From here on `sessions.expires_at` is the family's end (a refresh token's lifetime, extended
//! at every refresh); each access token's own expiry is in its JWT. Sessions started before this
//! change have no refresh token and end when their access token does, as before.
use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000002_create_session::Session;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RefreshToken::Table)
                    .if_not_exists()
                    // Lowercase hex of the SHA-256 of the token's random bytes.
                    .col(string_len(RefreshToken::TokenHash, 64).primary_key())
                    .col(uuid(RefreshToken::SessionId))
                    .col(timestamp_with_time_zone(RefreshToken::CreatedAt))
                    .col(timestamp_with_time_zone_null(RefreshToken::ReplacedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_tokens_session")
                            .from(RefreshToken::Table, RefreshToken::SessionId)
                            .to(Session::Table, Session::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_refresh_tokens_session")
                    .table(RefreshToken::Table)
                    .col(RefreshToken::SessionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RefreshToken::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum RefreshToken {
    #[sea_orm(iden = "refresh_tokens")]
    Table,
    TokenHash,
    SessionId,
    CreatedAt,
    ReplacedAt,
}
