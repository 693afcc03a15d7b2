//! Web Push: the browsers' push subscriptions (`push_subscriptions`, one row per endpoint: an
//! endpoint belongs to one browser profile, so registering it again moves it to whoever is signed
//! in there), and the pushes waiting to be sent (`push_deliveries`): enqueued in the write that
//! stored the notification, claimed by a worker when `next_attempt_ms` is due, deleted once sent
//! or given up. Times the worker compares are milliseconds since the epoch (a plain integer
//! orders alike on every backend).
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
                    .table(PushSubscription::Table)
                    .if_not_exists()
                    .col(uuid(PushSubscription::Id).primary_key())
                    .col(uuid(PushSubscription::UserId))
                    .col(string_len_uniq(PushSubscription::Endpoint, 1024))
                    .col(string_len(PushSubscription::P256dh, 100))
                    .col(string_len(PushSubscription::Auth, 30))
                    .col(timestamp_with_time_zone(PushSubscription::RegisteredAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_push_subscriptions_user")
                            .from(PushSubscription::Table, PushSubscription::UserId)
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
                    .name("idx_push_subscriptions_user_id")
                    .table(PushSubscription::Table)
                    .col(PushSubscription::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PushDelivery::Table)
                    .if_not_exists()
                    .col(uuid(PushDelivery::Id).primary_key())
                    .col(uuid(PushDelivery::SubscriptionId))
                    .col(uuid(PushDelivery::UserId))
                    .col(text(PushDelivery::Payload))
                    .col(integer(PushDelivery::Attempts))
                    .col(big_integer(PushDelivery::NextAttemptMs))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_push_deliveries_subscription")
                            .from(PushDelivery::Table, PushDelivery::SubscriptionId)
                            .to(PushSubscription::Table, PushSubscription::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // What is due, soonest first.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_push_deliveries_next_attempt")
                    .table(PushDelivery::Table)
                    .col(PushDelivery::NextAttemptMs)
                    .to_owned(),
            )
            .await?;
        // The cascade from a removed subscription.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_push_deliveries_subscription")
                    .table(PushDelivery::Table)
                    .col(PushDelivery::SubscriptionId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PushDelivery::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PushSubscription::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum PushSubscription {
    #[sea_orm(iden = "push_subscriptions")]
    Table,
    Id,
    UserId,
    Endpoint,
    P256dh,
    Auth,
    RegisteredAt,
}

#[derive(DeriveIden)]
pub enum PushDelivery {
    #[sea_orm(iden = "push_deliveries")]
    Table,
    Id,
    SubscriptionId,
    UserId,
    Payload,
    Attempts,
    NextAttemptMs,
}
