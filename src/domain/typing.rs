//! Typing indicators: never stored. `setTyping(true)` announces the state and starts a timer that
//! every refresh restarts; when it runs out (about 6 s without a refresh) the instance announces
//! that typing stopped.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
};
use crate::{
    app::AppState,
    error::AppResult,
    events::{Event, Topic},
    limits::Action,
};

/// How long a typing state lasts without a refresh.
pub const TTL: Duration = Duration::from_secs(6);

/// Who is typing where, with when it runs out (this instance's view).
#[derive(Default)]
pub struct Tracker {
    deadlines: Mutex<HashMap<(Uuid, Uuid), Instant>>,
}

impl Tracker {
    fn deadlines(&self) -> std::sync::MutexGuard<'_, HashMap<(Uuid, Uuid), Instant>> {
        self.deadlines.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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
    let changed = {
        let mut deadlines = app.typing.deadlines();
        if is_typing {
            deadlines.insert(key, Instant::now() + TTL).is_none()
        } else {
            deadlines.remove(&key).is_some()
        }
    };
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
    let now = Instant::now();
    let expired: Vec<(Uuid, Uuid)> = {
        let mut deadlines = app.typing.deadlines();
        let expired: Vec<_> = deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in &expired {
            deadlines.remove(key);
        }
        expired
    };
    for (chat_id, user_id) in expired {
        let event = Event::TypingChanged {
            chat_id,
            user_id,
            is_typing: false,
        };
        app.bus.publish(Topic::Chat(chat_id), event).await;
    }
}
