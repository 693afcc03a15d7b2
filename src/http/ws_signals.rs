//! What every subscription socket of an instance is told at set moments (a ping is due, the
//! instance is closing, the drain is over), through one registry and one task per instance
//! rather than a timer and two drain futures inside each socket's task. An idle socket holds an
//! entry here and a shared word of flags with its waker: about 120 bytes instead of about 600.
//!
//! Pings are spread over their period: each second, the sockets in one slice of the registry
//! (key modulo the period in seconds) are pinged, so 10,000 sockets never wake at once for them.
use std::{
    future::Future,
    sync::{
        Arc, Mutex, OnceLock, Weak,
        atomic::{AtomicU8, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use async_graphql::futures_util::task::AtomicWaker;
use slab::Slab;

use crate::drain::Drain;

/// A ping is due (taken when seen).
pub const PING: u8 = 1;
/// The instance is stopping: say goodbye (1012) and leave.
pub const CLOSING: u8 = 2;
/// The drain's deadline passed: stop at once.
pub const OVER: u8 = 4;

/// One socket's flags and the waker of its task.
struct Signal {
    flags: AtomicU8,
    waker: AtomicWaker,
}

/// The instance's registry of sockets.
pub struct Signals {
    sockets: Mutex<Slab<Arc<Signal>>>,
    drain: Drain,
    /// The ping period, in seconds: as many slices of the registry.
    slices: u64,
    /// The instance's task, started with the first socket (in the runtime).
    task: OnceLock<()>,
}

impl Signals {
    pub fn new(drain: Drain, ping_seconds: u64) -> Arc<Self> {
        Arc::new(Self {
            sockets: Mutex::default(),
            drain,
            slices: ping_seconds.max(1),
            task: OnceLock::new(),
        })
    }

    /// Registers a socket until the returned entry drops. A socket enrolled once the instance is
    /// closing (or over) is told at once.
    pub fn enroll(self: &Arc<Self>) -> Enrolled {
        self.task.get_or_init(|| {
            tokio::spawn(run(Arc::downgrade(self), self.drain.clone(), self.slices));
        });
        let signal = Arc::new(Signal {
            flags: AtomicU8::new(0),
            waker: AtomicWaker::new(),
        });
        let key = self.lock().insert(signal.clone());
        // The task raises a stage for the sockets registered when it sees it; one registered
        // after that sees the stage here (the drain moves on before the task raises).
        if self.drain.is_closing() {
            signal.flags.fetch_or(CLOSING, Ordering::AcqRel);
        }
        if self.drain.is_over() {
            signal.flags.fetch_or(OVER, Ordering::AcqRel);
        }
        Enrolled {
            signals: self.clone(),
            key,
            signal,
        }
    }

    /// Raises `flag` for the sockets whose key `pick` accepts, and wakes them.
    fn raise(&self, flag: u8, pick: impl Fn(usize) -> bool) {
        for (key, signal) in self.lock().iter() {
            if pick(key) {
                signal.flags.fetch_or(flag, Ordering::AcqRel);
                signal.waker.wake();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slab<Arc<Signal>>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The instance's task: a slice of pings each second, then the drain's stages. It ends at the
/// drain's deadline or once the registry is gone.
async fn run(signals: Weak<Signals>, drain: Drain, slices: u64) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let closing = drain.closing();
    tokio::pin!(closing);
    let over = drain.over();
    tokio::pin!(over);
    let mut closed = false;
    let mut second = 0u64;
    loop {
        let (flag, slice) = tokio::select! {
            _ = tick.tick() => {
                second += 1;
                (PING, Some(second % slices))
            }
            () = &mut closing, if !closed => {
                closed = true;
                (CLOSING, None)
            }
            () = &mut over => (OVER, None),
        };
        let Some(signals) = signals.upgrade() else {
            return;
        };
        signals.raise(flag, |key| slice.is_none_or(|s| key as u64 % slices == s));
        if flag == OVER {
            return;
        }
    }
}

/// A socket's entry in the registry; leaves it on drop.
pub struct Enrolled {
    signals: Arc<Signals>,
    key: usize,
    signal: Arc<Signal>,
}

impl Enrolled {
    /// Resolves with those of the flags in `mask` that are raised (a ping is taken; the
    /// stages stay raised). Every poller of a socket runs in the socket's one task, so they
    /// share its waker.
    pub fn raised(&self, mask: u8) -> impl Future<Output = u8> + '_ {
        std::future::poll_fn(move |cx| self.poll_raised(cx, mask))
    }

    fn poll_raised(&self, cx: &mut Context<'_>, mask: u8) -> Poll<u8> {
        if let Some(flags) = self.take(mask) {
            return Poll::Ready(flags);
        }
        self.signal.waker.register(cx.waker());
        match self.take(mask) {
            Some(flags) => Poll::Ready(flags),
            None => Poll::Pending,
        }
    }

    fn take(&self, mask: u8) -> Option<u8> {
        let flags = self.signal.flags.load(Ordering::Acquire) & mask;
        if flags == 0 {
            return None;
        }
        if flags & PING != 0 {
            self.signal.flags.fetch_and(!PING, Ordering::AcqRel);
        }
        Some(flags)
    }
}

impl Drop for Enrolled {
    fn drop(&mut self) {
        self.signals.lock().try_remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pings_reach_every_socket_once_per_period_and_stages_reach_all() {
        let drain = Drain::new(Duration::from_millis(300));
        let signals = Signals::new(drain.clone(), 2);
        let sockets: Vec<Enrolled> = (0..4).map(|_| signals.enroll()).collect();
        // Within one period (2 s) and a tick, each socket gets exactly one ping.
        let pinged = tokio::time::timeout(Duration::from_millis(3500), async {
            for socket in &sockets {
                assert_eq!(socket.raised(PING | CLOSING).await, PING);
            }
        })
        .await;
        assert!(pinged.is_ok(), "a socket was not pinged within its period");
        // Taken: no second ping is pending at once.
        let again =
            tokio::time::timeout(Duration::from_millis(10), sockets[0].raised(PING | CLOSING));
        assert!(again.await.is_err());

        drain.close_sockets();
        for socket in &sockets {
            assert_eq!(socket.raised(CLOSING).await, CLOSING);
        }
        // Closing stays raised, and a socket enrolled now is told at once.
        assert_eq!(sockets[0].raised(CLOSING).await, CLOSING);
        let late = signals.enroll();
        assert_eq!(late.raised(CLOSING).await, CLOSING);
        for socket in sockets.iter().chain([&late]) {
            assert_eq!(socket.raised(OVER).await, OVER);
        }
    }

    #[tokio::test]
    async fn a_socket_leaves_the_registry_when_it_ends() {
        let signals = Signals::new(Drain::new(Duration::from_secs(1)), 30);
        let first = signals.enroll();
        let second = signals.enroll();
        drop(first);
        assert_eq!(signals.lock().len(), 1);
        drop(second);
        assert!(signals.lock().is_empty());
    }
}
