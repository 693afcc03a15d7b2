//! Voice in rooms: who holds a seat in a room's voice session and their state, stored so every
//! instance agrees on who is in (signals themselves are never stored). `away_since` is when the
//! participant was last seen without a live socket anywhere; the grace sweep removes seats that
//! stayed away longer than the grace period.
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
                    .table(VoiceParticipant::Table)
                    .if_not_exists()
                    .col(uuid(VoiceParticipant::ChatId))
                    .col(uuid(VoiceParticipant::UserId))
                    .col(boolean(VoiceParticipant::IsMuted).default(false))
                    .col(boolean(VoiceParticipant::IsDeafened).default(false))
                    .col(boolean(VoiceParticipant::IsSpeaking).default(false))
                    .col(boolean(VoiceParticipant::HandRaised).default(false))
                    .col(boolean(VoiceParticipant::MutedByAdmin).default(false))
                    .col(timestamp_with_time_zone(VoiceParticipant::JoinedAt))
                    .col(timestamp_with_time_zone_null(VoiceParticipant::AwaySince))
                    .primary_key(
                        Index::create()
                            .col(VoiceParticipant::ChatId)
                            .col(VoiceParticipant::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_voice_participants_chat")
                            .from(VoiceParticipant::Table, VoiceParticipant::ChatId)
                            .to(Chat::Table, Chat::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_voice_participants_user")
                            .from(VoiceParticipant::Table, VoiceParticipant::UserId)
                            .to(User::Table, User::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The presence hook marks a user's seats by user; the cascade from users uses it too.
        index(
            manager,
            "idx_voice_participants_user",
            VoiceParticipant::Table,
            &[VoiceParticipant::UserId],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(VoiceParticipant::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
pub enum VoiceParticipant {
    #[sea_orm(iden = "voice_participants")]
    Table,
    ChatId,
    UserId,
    IsMuted,
    IsDeafened,
    IsSpeaking,
    HandRaised,
    MutedByAdmin,
    JoinedAt,
    AwaySince,
}
