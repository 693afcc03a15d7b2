//! Track metadata read from the audio bytes: the length in milliseconds (playback advances on
//! it; `duration_seconds` stays, rounded from it) and the artist from the tags. Tracks stored
//! before this change keep their whole-second WAV length, now also in milliseconds.
use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000005_create_file::Track;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Added {
    DurationMs,
    Artist,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Track::Table)
                    .add_column(big_integer_null(Added::DurationMs))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Track::Table)
                    .add_column(string_len_null(Added::Artist, 200))
                    .to_owned(),
            )
            .await?;
        let backfill = Query::update()
            .table(Track::Table)
            // As bigint first: a whole-second length times 1000 can leave PostgreSQL's integer.
            .value(
                Added::DurationMs,
                Expr::col(Track::DurationSeconds)
                    .cast_as("bigint")
                    .mul(1000),
            )
            .and_where(Expr::col(Track::DurationSeconds).is_not_null())
            .to_owned();
        manager.exec_stmt(backfill).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Added::Artist, Added::DurationMs] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Track::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
