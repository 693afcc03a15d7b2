//! Who is typing where on this instance, with when each state runs out: transport state, never
//! stored. The rules (who may type, what is announced) are in `domain::typing`.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use uuid::Uuid;

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

impl Tracker {
    /// Starts or refreshes (`typing`) or stops the state of `(chat, user)`; true when it changed
    /// (a refresh only moves the deadline).
    pub fn set(&self, key: (Uuid, Uuid), typing: bool) -> bool {
        let mut deadlines = self.deadlines();
        if typing {
            deadlines.insert(key, Instant::now() + TTL).is_none()
        } else {
            deadlines.remove(&key).is_some()
        }
    }

    /// Removes and returns every `(chat, user)` whose state ran out by `now`.
    pub fn take_expired(&self, now: Instant) -> Vec<(Uuid, Uuid)> {
        let mut deadlines = self.deadlines();
        let expired: Vec<_> = deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in &expired {
            deadlines.remove(key);
        }
        expired
    }
}
