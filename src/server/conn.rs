//! What one connection has been doing, for its timeouts: requests in flight, when it went idle,
//! when the next request's first byte arrived. The socket is wrapped so reads are seen here;
//! the request service marks requests begun and finished.
use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Instant,
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::Timeouts;

/// "Not set" for the millisecond fields.
const NONE: u64 = u64::MAX;

/// One connection's timing state, shared by its socket, its requests and its watchdog.
/// Times are milliseconds since the connection was accepted.
pub struct Activity {
    opened: Instant,
    /// Requests from headers parsed until their response body is written (or dropped).
    in_flight: AtomicU32,
    /// When the last request finished; `NONE` while no request has finished yet.
    idle_since: AtomicU64,
    /// First byte read while no request was in flight (a new request's head is arriving).
    head_started: AtomicU64,
    /// Set once the connection became a WebSocket: its bytes no longer concern the timeouts.
    detached: AtomicBool,
    /// The current request's body was cut off for being too slow.
    body_too_slow: AtomicBool,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(NONE),
            head_started: AtomicU64::new(NONE),
            detached: AtomicBool::new(false),
            body_too_slow: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    /// A request's headers were parsed: it is in flight until the returned guard drops.
    pub fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(NONE, Ordering::Release);
        self.body_too_slow.store(false, Ordering::Release);
        Busy(self.clone())
    }

    /// The connection was upgraded (WebSocket): stop watching its bytes.
    pub fn detach(&self) {
        self.detached.store(true, Ordering::Release);
    }

    pub fn mark_body_too_slow(&self) {
        self.body_too_slow.store(true, Ordering::Release);
    }

    pub fn body_was_too_slow(&self) -> bool {
        self.body_too_slow.load(Ordering::Acquire)
    }

    /// Whether nothing is happening: no request in flight, no byte of a next one received.
    pub fn is_quiet(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.load(Ordering::Acquire) == NONE
    }

    fn saw_bytes(&self) {
        if self.detached.load(Ordering::Relaxed)
            || self.in_flight.load(Ordering::Acquire) != 0
            || self.head_started.load(Ordering::Relaxed) != NONE
        {
            return;
        }
        let now = self.now_ms();
        let _ = self
            .head_started
            .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// When the connection must be closed if nothing changes: a new connection must deliver a
    /// whole request head within the header timeout of opening; after a request, the next one
    /// may wait the keep-alive timeout, but once its first byte arrives its head must be
    /// complete within the header timeout. While a request is in flight there is no deadline (the body has its
    /// own), so the watchdog only looks again one period later.
    pub fn deadline(&self, timeouts: &Timeouts) -> Instant {
        if self.in_flight.load(Ordering::Acquire) != 0 {
            return Instant::now() + timeouts.header.min(timeouts.keep_alive);
        }
        let head = self.head_started.load(Ordering::Acquire);
        let idle = self.idle_since.load(Ordering::Acquire);
        let ms = if idle == NONE {
            // The first request: its head is due a header timeout after the connection opened.
            millis(timeouts.header)
        } else if head != NONE {
            head.saturating_add(millis(timeouts.header))
        } else {
            idle.saturating_add(millis(timeouts.keep_alive))
        };
        self.opened + std::time::Duration::from_millis(ms)
    }

    /// Whether the deadline has passed with no request in flight.
    pub fn expired(&self, timeouts: &Timeouts) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.deadline(timeouts)
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(NONE - 1)
}

/// A request in flight; dropped when its response body is done.
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Release);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, reporting reads to its connection's [`Activity`].
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.saw_bytes();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
