//! Uploaded files (bytes live in storage under a generated key; the row keeps the sanitised
//! original name, the type detected from the bytes and what the file belongs to) and music tracks.
use sea_orm_migration::{prelude::*, schema::*};

use super::{
    m20261122_000001_create_user::User,
    m20261122_000003_create_chat::{Chat, index},
    m20261122_000004_create_message::Message,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(File::Table)
                    .if_not_exists()
                    .col(uuid(File::Id).primary_key())
                    .col(uuid_null(File::UploaderId))
                    .col(string_len(File::Purpose, 16))
                    .col(string_len(File::StorageKey, 64))
                    .col(string_len(File::FileName, 255))
                    .col(string_len(File::ContentType, 100))
                    .col(big_integer(File::Size))
                    .col(uuid_null(File::ChatId))
                    .col(uuid_null(File::MessageId))
                    .col(timestamp_with_time_zone(File::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_files_uploader")
                            .from(File::Table, File::UploaderId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_files_chat")
                            .from(File::Table, File::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_files_message")
                            .from(File::Table, File::MessageId)
                            .to(Message::Table, Message::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_files_message",
            File::Table,
            &[File::MessageId],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Track::Table)
                    .if_not_exists()
                    .col(uuid(Track::Id).primary_key())
                    .col(uuid(Track::FileId))
                    .col(uuid_null(Track::RoomId))
                    .col(uuid_null(Track::UploaderId))
                    .col(string_len(Track::Title, 200))
                    .col(integer_null(Track::DurationSeconds))
                    .col(timestamp_with_time_zone(Track::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tracks_file")
                            .from(Track::Table, Track::FileId)
                            .to(File::Table, File::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tracks_room")
                            .from(Track::Table, Track::RoomId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_tracks_room",
            Track::Table,
            &[Track::RoomId, Track::CreatedAt],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Track::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(File::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
#[allow(clippy::enum_variant_names)] // `FileName` is the column's name
pub enum File {
    #[sea_orm(iden = "files")]
    Table,
    Id,
    UploaderId,
    Purpose,
    StorageKey,
    FileName,
    ContentType,
    Size,
    ChatId,
    MessageId,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum Track {
    #[sea_orm(iden = "tracks")]
    Table,
    Id,
    FileId,
    RoomId,
    UploaderId,
    Title,
    DurationSeconds,
    CreatedAt,
}
