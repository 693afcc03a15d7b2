//! A member's own notification settings for a chat: muting its notifications for a while or
//! until unmuted, and whether replies notify or only mentions do. Muting never hides anything:
//! unread messages and mentions still count; only notifications (and so pushes) stop.
use chrono::{DateTime, TimeZone, Utc};
use sea_orm::{ActiveModelTrait, Set};
use std::sync::LazyLock;
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
};
use crate::{
    entity::{
        chat,
        chat_member::{self, NotifyLevel},
    },
    error::{AppError, AppResult},
    state::AppState,
};

/// What "muted until unmuted" is stored as: a time no mute ends before.
pub static FOR_EVER: LazyLock<DateTime<Utc>> = LazyLock::new(|| {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .single()
        .expect("a valid date")
});

/// Mutes the chat's notifications for the caller until `until` (None: until unmuted).
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat = %chat_id))]
pub async fn mute(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    until: Option<DateTime<Utc>>,
) -> AppResult<chat::Model> {
    if let Some(until) = until
        && (until <= Utc::now() || until >= *FOR_EVER)
    {
        return Err(AppError::bad_input(
            "until",
            "until must be in the future (or null, to mute until unmuted)",
        ));
    }
    let until = until.unwrap_or(*FOR_EVER);
    change(app, viewer, chat_id, |m| {
        m.notifications_muted_until = Set(Some(until))
    })
    .await
}

/// Lets the chat notify the caller again.
pub async fn unmute(app: &AppState, viewer: &Viewer, chat_id: Uuid) -> AppResult<chat::Model> {
    change(app, viewer, chat_id, |m| {
        m.notifications_muted_until = Set(None)
    })
    .await
}

/// Chooses what the chat notifies the caller of.
pub async fn set_level(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    level: NotifyLevel,
) -> AppResult<chat::Model> {
    change(app, viewer, chat_id, |m| m.notify_level = Set(level)).await
}

/// Applies `set` to the caller's own membership row of the chat (members only): their settings
/// and their archive flag.
pub(super) async fn change(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    set: impl FnOnce(&mut chat_member::ActiveModel),
) -> AppResult<chat::Model> {
    let access = chat_access(app, viewer, chat_id, Need::Member).await?;
    let Some(membership) = access.membership else {
        return Err(AppError::Forbidden(
            "only members have notification settings for a chat".into(),
        ));
    };
    let mut model: chat_member::ActiveModel = membership.into();
    set(&mut model);
    model.update(&app.db).await?;
    Ok(access.chat)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_ever_is_far_but_stored_everywhere() {
        assert_eq!(FOR_EVER.to_rfc3339(), "9999-12-31T23:59:59+00:00");
    }
}
