//! A request body that must keep moving. While the handler waits for bytes, the body fails if
//! none arrived for the stall bound, or if, past that same grace period, it has averaged less
//! than the minimum rate (the allowance grows by one second per `min_rate` bytes received, as
//! Apache's mod_reqtimeout does). A healthy slow upload is never cut; a trickle is.
use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::conn::Activity;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the handler sees when the body was cut off.
#[derive(Debug)]
pub struct BodyTooSlow;

impl std::fmt::Display for BodyTooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body arrived too slowly")
    }
}

impl std::error::Error for BodyTooSlow {}

/// A request body held to the stall bound and the minimum rate.
pub struct Paced {
    inner: Incoming,
    stall: Duration,
    min_rate: u64,
    activity: Arc<Activity>,
    /// When the handler first asked for the body (the clocks start then).
    started: Option<Instant>,
    last_progress: Option<Instant>,
    received: u64,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    pub fn new(inner: Incoming, stall: Duration, min_rate: u64, activity: Arc<Activity>) -> Self {
        Self {
            inner,
            stall,
            min_rate,
            activity,
            started: None,
            last_progress: None,
            received: 0,
            timer: None,
        }
    }

    fn deadline(&self, started: Instant) -> Instant {
        let stalled = self.last_progress.unwrap_or(started) + self.stall;
        if self.min_rate == 0 {
            return stalled;
        }
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        stalled.min(started + self.stall + earned)
    }

    fn cut_off(&mut self) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.activity.mark_body_too_slow();
        Poll::Ready(Some(Err(Box::new(BodyTooSlow))))
    }
}

impl Body for Paced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let now = Instant::now();
        let started = *this.started.get_or_insert(now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    this.last_progress = Some(now);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(Box::new(err)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.deadline(started);
                if now >= deadline {
                    return this.cut_off();
                }
                let deadline = tokio::time::Instant::from_std(deadline);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => this.cut_off(),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The answer when a body was cut off, whatever the handler made of the error; the connection
/// closes after it, since the rest of the body was never read.
pub fn too_slow_response() -> Response {
    (
        StatusCode::REQUEST_TIMEOUT,
        [(header::CONNECTION, "close")],
        Json(serde_json::json!({ "detail": BodyTooSlow.to_string() })),
    )
        .into_response()
}
