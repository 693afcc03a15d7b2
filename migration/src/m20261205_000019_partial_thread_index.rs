//! The thread index (`idx_messages_thread_seq`) covers thread replies only. As a full index it
//! also listed every message outside a thread under `thread_root_id IS NULL`, and planners chose
//! it for the chat list's unread counts (`thread_root_id IS NULL` beside fifty `chat_id`/`seq`
//! ranges): a scan of every message of every chat instead of a few index ranges, which took the
//! chat list from about 5 ms to 525 ms on SQLite. A partial index cannot answer `IS NULL`, and
//! still serves every lookup by thread (`thread_root_id = ?` or `IN (…)` implies it is set).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const DROP: &str = "DROP INDEX IF EXISTS idx_messages_thread_seq";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::execute_all(
            manager,
            &[
                DROP,
                "CREATE INDEX IF NOT EXISTS idx_messages_thread_seq ON messages \
                 (thread_root_id, seq) WHERE thread_root_id IS NOT NULL",
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::execute_all(
            manager,
            &[
                DROP,
                "CREATE INDEX IF NOT EXISTS idx_messages_thread_seq ON messages \
                 (thread_root_id, seq)",
            ],
        )
        .await
    }
}
