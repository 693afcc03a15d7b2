//! Emoji reactions: one per (message, user, emoji); toggling the same emoji again removes it.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, message_access},
    autocommit,
};
use crate::{
    entity::{message, reaction},
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// Adds the caller's reaction, or removes it if it was there. Returns the message.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, message = %message_id))]
pub async fn toggle(
    app: &AppState,
    viewer: &Viewer,
    message_id: Uuid,
    emoji: &str,
) -> AppResult<message::Model> {
    app.limits.per_user(Action::Reaction, viewer, 1).await?;
    let (message, _) = message_access(app, viewer, message_id, Need::Member).await?;
    if message.deleted_at.is_some() {
        return Err(AppError::bad_input(
            "messageId",
            "a deleted message cannot be reacted to",
        ));
    }
    let emoji = emoji.trim();
    // Exactly one emoji (one grapheme cluster, including skin tones and ZWJ sequences).
    if emojis::get(emoji).is_none() {
        return Err(AppError::bad_input("emoji", "emoji must be a single emoji"));
    }
    autocommit(app, |db, outbox| {
        Box::pin(async move {
            let key = (message_id, viewer.user_id, emoji.to_string());
            let removed = reaction::Entity::delete_by_id(key).exec(db).await?;
            if removed.rows_affected == 0 {
                let inserted = reaction::ActiveModel {
                    message_id: Set(message_id),
                    user_id: Set(viewer.user_id),
                    emoji: Set(emoji.to_string()),
                    created_at: Set(Utc::now()),
                }
                .insert(db)
                .await;
                match inserted {
                    // A concurrent identical toggle inserted it first: the reaction is there
                    // either way.
                    Err(e) if crate::db::unique_violation(&e).is_some() => {}
                    other => {
                        other?;
                    }
                }
            }
            let event = Event::ReactionChanged {
                message: message.clone(),
            };
            outbox.record(Topic::Chat(message.chat_id), event);
            Ok(message)
        })
    })
    .await
}
