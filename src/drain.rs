//! An instance's way out, shared by the layers that take part in it. After the shutdown signal
//! it is *draining*: the readiness answer turns false and no connection is accepted; once the
//! background work has stopped it is *closing*: every WebSocket says goodbye (1012) and leaves,
//! holding a [`Hold`] until its last words are out. The drain is *over* at its deadline
//! (`GOFTGU_DRAIN_SECONDS` after the signal): whatever is still open is dropped.
use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, watch},
    time::Instant,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stage {
    Serving,
    Draining,
    Closing,
}

struct Inner {
    stage: watch::Sender<Stage>,
    /// When the drain must be over; set by `begin`.
    deadline: OnceLock<Instant>,
    limit: Duration,
    /// Holds not yet released, and a wake-up when the last one is.
    held: AtomicUsize,
    released: Notify,
}

/// The instance's drain state; cheap to clone.
#[derive(Clone)]
pub struct Drain(Arc<Inner>);

impl Drain {
    /// Serving, with `limit` for the drain once it begins.
    pub fn new(limit: Duration) -> Self {
        Self(Arc::new(Inner {
            stage: watch::Sender::new(Stage::Serving),
            deadline: OnceLock::new(),
            limit,
            held: AtomicUsize::new(0),
            released: Notify::new(),
        }))
    }

    /// The shutdown signal came: not ready, accept nothing more. The deadline starts now.
    pub fn begin(&self) {
        self.0
            .deadline
            .get_or_init(|| Instant::now() + self.0.limit);
        self.0
            .stage
            .send_if_modified(|stage| advance(stage, Stage::Draining));
    }

    /// Tell the WebSockets to close.
    pub fn close_sockets(&self) {
        self.begin();
        self.0
            .stage
            .send_if_modified(|stage| advance(stage, Stage::Closing));
    }

    /// Whether the drain has begun (the readiness answer).
    pub fn is_draining(&self) -> bool {
        *self.0.stage.borrow() >= Stage::Draining
    }

    /// Whether the WebSockets are to close.
    pub fn is_closing(&self) -> bool {
        *self.0.stage.borrow() >= Stage::Closing
    }

    /// Resolves once the drain has begun.
    pub async fn draining(&self) {
        self.reached(Stage::Draining).await;
    }

    /// Resolves once the WebSockets are to close.
    pub async fn closing(&self) {
        self.reached(Stage::Closing).await;
    }

    /// Resolves at the drain's deadline (never while serving).
    pub async fn over(&self) {
        self.draining().await;
        if let Some(deadline) = self.0.deadline.get() {
            tokio::time::sleep_until(*deadline).await;
        }
    }

    /// Whether the deadline has passed.
    pub fn is_over(&self) -> bool {
        self.0
            .deadline
            .get()
            .is_some_and(|at| Instant::now() >= *at)
    }

    /// Counts something the drain waits for until the returned hold drops.
    pub fn hold(&self) -> Hold {
        self.0.held.fetch_add(1, Ordering::AcqRel);
        Hold(self.0.clone())
    }

    /// Resolves when no hold is left.
    pub async fn released(&self) {
        loop {
            let notified = self.0.released.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.0.held.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }

    async fn reached(&self, stage: Stage) {
        let mut watching = self.0.stage.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail here.
        let _ = watching.wait_for(|now| *now >= stage).await;
    }
}

fn advance(stage: &mut Stage, to: Stage) -> bool {
    if *stage >= to {
        return false;
    }
    *stage = to;
    true
}

/// Something the drain waits for (an open WebSocket); released on drop.
pub struct Hold(Arc<Inner>);

impl Drop for Hold {
    fn drop(&mut self) {
        if self.0.held.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_advance_in_order_and_holds_are_awaited() {
        let drain = Drain::new(Duration::from_secs(60));
        assert!(!drain.is_draining());
        let hold = drain.hold();
        drain.begin();
        assert!(drain.is_draining());
        drain.draining().await;
        drain.close_sockets();
        drain.closing().await;
        drain.begin(); // no step back
        drain.closing().await;
        let released = tokio::spawn({
            let drain = drain.clone();
            async move { drain.released().await }
        });
        drop(hold);
        released.await.unwrap();
        assert!(!drain.is_over());
    }

    #[tokio::test]
    async fn the_deadline_counts_from_the_signal() {
        let drain = Drain::new(Duration::from_millis(50));
        let never = tokio::time::timeout(Duration::from_millis(100), drain.over()).await;
        assert!(never.is_err(), "no deadline while serving");
        drain.begin();
        drain.over().await;
        assert!(drain.is_over());
    }
}
