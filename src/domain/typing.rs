//! Typing indicators: never stored. `setTyping(true)` announces the state and starts a timer that
//! every refresh restarts; when it runs out (about 6 s without a refresh) the instance announces
//! that typing stopped. The timers are transport state (`events::typing::Tracker`).
use std::time::Instant;

use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
};
use crate::{
    error::AppResult,
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

pub use crate::events::typing::TTL;

/// Starts, refreshes or stops the caller's typing state in a chat.
pub async fn set_typing(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    is_typing: bool,
) -> AppResult<()> {
    app.limits.per_user(Action::Typing, viewer, 1).await?;
    chat_access(app, viewer, chat_id, Need::Post).await?;
    let key = (chat_id, viewer.user_id);
    let changed = app.typing.set(key, is_typing);
    if changed {
        let event = Event::TypingChanged {
            chat_id,
            user_id: viewer.user_id,
            is_typing,
        };
        app.bus.publish(Topic::Chat(chat_id), event).await;
    }
    Ok(())
}

/// Announces the end of every typing state that ran out (run about once a second).
pub async fn expire(app: &AppState) {
    for (chat_id, user_id) in app.typing.take_expired(Instant::now()) {
        let event = Event::TypingChanged {
            chat_id,
            user_id,
            is_typing: false,
        };
        app.bus.publish(Topic::Chat(chat_id), event).await;
    }
}
