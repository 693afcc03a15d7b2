//! What is left of a request body its handler did not read. A request refused early (no token:
//! 401, too big: 413, wrong type: 415) is answered before its body is read; if the connection then
//! closed with the body still arriving, the kernel would reset it, and clients that write the
//! whole body before reading (Node's `fetch`, browsers) would report a connection error instead of
//! the answer. So the rest is read and thrown away first, up to a bound, within a time limit and
//! the body's own pace rules. A client that sent `Expect: 100-continue` and was never told to go
//! on sends nothing more, so nothing is read; a body larger than the bound is not read at all, and
//! the answer closes the connection.
use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Response, header},
};
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Longest time spent reading a refused body.
const DRAIN_TIME: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    body: Option<Body>,
    polled: bool,
    ended: bool,
}

/// A request body shared between the handler and the server: what the handler leaves, the
/// server can still read.
#[derive(Clone)]
pub struct Shared(Arc<Mutex<State>>);

impl Shared {
    /// Wraps `body`; the returned `Body` goes to the handler.
    pub fn new(body: Body) -> (Self, Body) {
        let ended = body.is_end_stream();
        let shared = Self(Arc::new(Mutex::new(State {
            body: Some(body),
            polled: false,
            ended,
        })));
        (shared.clone(), Body::new(shared))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads what the handler left of the body, so the answer reaches the client, and tells
    /// whether the connection must close after the answer (the rest could not be read).
    pub async fn drain(self, request: Announced, limit: u64) -> bool {
        {
            let state = self.state();
            if state.ended || state.body.is_none() {
                return false;
            }
            // Told to wait for `100 Continue`, which hyper sends only once the body is polled.
            if !state.polled && request.expects_continue {
                return false;
            }
        }
        if request.length.is_some_and(|length| length > limit) {
            return true;
        }
        let mut body = Body::new(self);
        let mut read = 0u64;
        let reading = async {
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    return true;
                };
                if let Some(data) = frame.data_ref() {
                    read += data.len() as u64;
                    if read > limit {
                        return true;
                    }
                }
            }
            false
        };
        tokio::time::timeout(DRAIN_TIME, reading)
            .await
            .unwrap_or(true)
    }
}

impl http_body::Body for Shared {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut state = self.state();
        state.polled = true;
        let Some(body) = state.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            state.ended = true;
        }
        polled.map(|frame| frame.map(|r| r.map_err(BoxError::from)))
    }

    fn is_end_stream(&self) -> bool {
        let state = self.state();
        state.ended || state.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.state()
            .body
            .as_ref()
            .map(|b| b.size_hint())
            .unwrap_or_default()
    }
}

/// What a request's head says of its body.
#[derive(Clone, Copy, Debug)]
pub struct Announced {
    /// `Content-Length`.
    length: Option<u64>,
    /// `Expect: 100-continue`.
    expects_continue: bool,
}

impl Announced {
    pub fn of(headers: &HeaderMap) -> Self {
        Self {
            length: headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok()),
            expects_continue: headers
                .get(header::EXPECT)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        }
    }
}

/// Marks an answer as the connection's last.
pub fn close_after<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}
