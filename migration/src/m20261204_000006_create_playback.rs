//! Listening together: each room's playback state (one row, compare-and-set by `version` so
//! exactly one instance advances it) and its queue of tracks, plus the room setting that lets any
//! member enqueue.
use sea_orm_migration::{prelude::*, schema::*};

use super::{
    m20261122_000001_create_user::User,
    m20261122_000003_create_chat::{Chat, index},
    m20261122_000005_create_file::Track,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Chat::Table)
                    .add_column(boolean(RoomSetting::AnyoneCanEnqueue).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoomPlayback::Table)
                    .if_not_exists()
                    .col(uuid(RoomPlayback::ChatId).primary_key())
                    .col(uuid_null(RoomPlayback::TrackId))
                    .col(boolean(RoomPlayback::IsPlaying))
                    .col(big_integer(RoomPlayback::PositionMs))
                    .col(timestamp_with_time_zone(RoomPlayback::UpdatedAt))
                    .col(timestamp_with_time_zone_null(RoomPlayback::EndsAt))
                    .col(big_integer(RoomPlayback::Version))
                    .col(uuid_null(RoomPlayback::ChangedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_playback_chat")
                            .from(RoomPlayback::Table, RoomPlayback::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_playback_track")
                            .from(RoomPlayback::Table, RoomPlayback::TrackId)
                            .to(Track::Table, Track::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_playback_changed_by")
                            .from(RoomPlayback::Table, RoomPlayback::ChangedBy)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // The auto-advance sweep looks for playing tracks that have ended.
        index(
            manager,
            "idx_room_playback_ends",
            RoomPlayback::Table,
            &[RoomPlayback::EndsAt],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoomQueue::Table)
                    .if_not_exists()
                    .col(uuid(RoomQueue::Id).primary_key())
                    .col(uuid(RoomQueue::ChatId))
                    .col(uuid(RoomQueue::TrackId))
                    .col(big_integer(RoomQueue::Position))
                    .col(uuid_null(RoomQueue::AddedBy))
                    .col(timestamp_with_time_zone(RoomQueue::AddedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_queue_chat")
                            .from(RoomQueue::Table, RoomQueue::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_queue_track")
                            .from(RoomQueue::Table, RoomQueue::TrackId)
                            .to(Track::Table, Track::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_room_queue_added_by")
                            .from(RoomQueue::Table, RoomQueue::AddedBy)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_room_queue_order",
            RoomQueue::Table,
            &[RoomQueue::ChatId, RoomQueue::Position],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RoomQueue::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RoomPlayback::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Chat::Table)
                    .drop_column(RoomSetting::AnyoneCanEnqueue)
                    .to_owned(),
            )
            .await
    }
}

/// The room setting added to `chats`.
#[derive(DeriveIden, Clone, Copy)]
enum RoomSetting {
    AnyoneCanEnqueue,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum RoomPlayback {
    #[sea_orm(iden = "room_playback")]
    Table,
    ChatId,
    TrackId,
    IsPlaying,
    PositionMs,
    UpdatedAt,
    EndsAt,
    Version,
    ChangedBy,
}

#[derive(DeriveIden, Clone, Copy)]
pub enum RoomQueue {
    #[sea_orm(iden = "room_queue")]
    Table,
    Id,
    ChatId,
    TrackId,
    Position,
    AddedBy,
    AddedAt,
}
