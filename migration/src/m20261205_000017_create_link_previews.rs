//! Link previews: what a fetched page says about itself, cached per URL (`link_previews`; a
//! failed fetch is kept too, so a dead link is not fetched again at every send), and which
//! message shows which URL's preview (`message_link_previews`).
use sea_orm_migration::{prelude::*, schema::*};

use super::m20261122_000004_create_message::Message;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum LinkPreview {
    #[sea_orm(iden = "link_previews")]
    Table,
    Url,
    Ok,
    Title,
    Description,
    ImageUrl,
    SiteName,
    FetchedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum MessageLinkPreview {
    #[sea_orm(iden = "message_link_previews")]
    Table,
    MessageId,
    Url,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LinkPreview::Table)
                    .if_not_exists()
                    .col(string_len(LinkPreview::Url, 2048).primary_key())
                    .col(boolean(LinkPreview::Ok))
                    .col(string_len_null(LinkPreview::Title, 300))
                    .col(string_len_null(LinkPreview::Description, 1000))
                    .col(string_len_null(LinkPreview::ImageUrl, 2048))
                    .col(string_len_null(LinkPreview::SiteName, 200))
                    .col(timestamp_with_time_zone(LinkPreview::FetchedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MessageLinkPreview::Table)
                    .if_not_exists()
                    .col(uuid(MessageLinkPreview::MessageId).primary_key())
                    .col(string_len(MessageLinkPreview::Url, 2048))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_message_link_previews_message")
                            .from(MessageLinkPreview::Table, MessageLinkPreview::MessageId)
                            .to(Message::Table, Message::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MessageLinkPreview::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(LinkPreview::Table).to_owned())
            .await
    }
}
