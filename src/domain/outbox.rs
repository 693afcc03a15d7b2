//! Events publish themselves once their write is committed, so no caller has to remember to:
//! a write records what happened in an `Outbox` while it runs, and the runner that began the
//! write (`in_transaction`, or `autocommit` for a write that commits by itself) publishes those
//! events, in the order recorded, only after the commit succeeded. A write that fails or rolls
//! back publishes nothing. An `Outbox` cannot be made or emptied anywhere else, so a writer that
//! takes one (`messages::insert`, `members::add_member`, …) cannot run without its events.
//! Ephemeral state that is never stored (presence, typing) publishes directly.
use std::{future::Future, pin::Pin};

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};

use super::session_cache::SessionCache;
use crate::{
    error::AppResult,
    events::{Bus, Event, Topic},
    state::AppState,
};

/// What a write has to tell once it is committed.
///
/// It borrows the bus for the runner's whole call (`'a`), which also lets a write's closure
/// borrow what the caller holds (the state, the viewer) for as long as the closure runs.
pub struct Outbox<'a> {
    bus: &'a Bus,
    sessions: Option<&'a SessionCache>,
    events: Vec<(Topic, Event)>,
}

impl<'a> Outbox<'a> {
    fn new(bus: &'a Bus) -> Self {
        Self {
            bus,
            sessions: None,
            events: Vec::new(),
        }
    }

    fn of(app: &'a AppState) -> Self {
        Self {
            sessions: Some(&app.sessions),
            ..Self::new(&app.bus)
        }
    }

    /// Records `event` for `topic`; it is published after the commit, after the events
    /// recorded before it.
    pub fn record(&mut self, topic: Topic, event: Event) {
        self.events.push((topic, event));
    }

    /// Publishes the events; revoked sessions are first forgotten by every instance's cache,
    /// so the revoking request answers only once no instance accepts them.
    async fn publish(self) {
        if let Some(sessions) = self.sessions {
            for (_, event) in &self.events {
                if let Event::SessionsRevoked { user_id, .. } = event {
                    sessions.invalidate(*user_id).await;
                }
            }
        }
        self.bus.publish_all(self.events).await;
    }
}

/// The future a write's closure returns, living as long as what it was handed.
pub type Work<'c, T> = Pin<Box<dyn Future<Output = AppResult<T>> + Send + 'c>>;

/// Runs `work` in one database transaction: committed when it returns `Ok`, rolled back (by
/// dropping the transaction) when it returns an error, so nothing is ever half-written. The
/// events it recorded are published after the commit, and never when it fails.
pub async fn in_transaction<'a, T, F>(app: &'a AppState, work: F) -> AppResult<T>
where
    T: Send,
    F: for<'c> FnOnce(&'c DatabaseTransaction, &'c mut Outbox<'a>) -> Work<'c, T> + Send,
{
    // SQLite has one writer: transactions take turns here, woken in order, instead of meeting
    // in SQLite's busy handler, which sleeps and polls (1, 2, 5, 10… ms) while another commits.
    let turn = match &app.sqlite_writes {
        Some(writes) => Some(writes.lock().await),
        None => None,
    };
    let txn = app.db.begin().await?;
    let mut outbox = Outbox::of(app);
    let out = work(&txn, &mut outbox).await?;
    txn.commit().await?;
    drop(turn);
    outbox.publish().await;
    Ok(out)
}

/// Runs a write that commits by itself, without BEGIN and COMMIT round trips: one statement on
/// the pool (or a step such as `files::save` that commits its own row). Its events are
/// published once `work` returned `Ok`. Several statements that must stand or fall together
/// belong in `in_transaction` instead.
pub async fn autocommit<'a, T, F>(app: &'a AppState, work: F) -> AppResult<T>
where
    T: Send,
    F: for<'c> FnOnce(&'c DatabaseConnection, &'c mut Outbox<'a>) -> Work<'c, T> + Send,
{
    let mut outbox = Outbox::of(app);
    let out = work(&app.db, &mut outbox).await?;
    outbox.publish().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[tokio::test]
    async fn events_wait_for_publish_and_keep_their_order() {
        let bus = Bus::local();
        let chat_id = Uuid::new_v4();
        let mut rx = bus.subscribe(Topic::Chat(chat_id));
        let message_id = Uuid::new_v4();
        let mut outbox = Outbox::new(&bus);
        outbox.record(Topic::Chat(chat_id), Event::ChatUpdated { chat_id });
        outbox.record(
            Topic::Chat(chat_id),
            Event::MessageDeleted {
                chat_id,
                message_id,
            },
        );
        assert!(rx.try_recv().is_err(), "nothing is sent while recording");
        outbox.publish().await;
        assert!(matches!(
            rx.try_recv().unwrap().event,
            Event::ChatUpdated { .. }
        ));
        let second = rx.try_recv().unwrap();
        assert!(
            matches!(second.event, Event::MessageDeleted { message_id: m, .. } if m == message_id)
        );

        // Dropped (the write failed): nothing is sent.
        let mut outbox = Outbox::new(&bus);
        outbox.record(Topic::Chat(chat_id), Event::ChatUpdated { chat_id });
        drop(outbox);
        assert!(rx.try_recv().is_err());
    }
}
