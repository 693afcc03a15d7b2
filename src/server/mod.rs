//! The serving loop. `axum::serve` has no timeouts (a client sending one header line a second,
//! a body a byte a second, or nothing, holds its connection for ever), so connections are
//! accepted here and served by hyper's HTTP/1 directly, each watched for a header timeout, an
//! idle keep-alive timeout and a request body that must keep moving. Upgraded WebSockets leave
//! the watch (they have their own init timeout and pings). Shutdown follows the instance's
//! drain (`crate::drain`): once it begins, stop accepting, close idle connections, let requests
//! in flight finish; at the drain's deadline drop whatever is still open.
mod body;
mod conn;
mod unread;

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, body::Body, extract::ConnectInfo, http::StatusCode, serve::Listener};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};
use tower::ServiceExt;

use crate::{config::Config, drain::Drain};
use conn::{Activity, Busy, Tracked};

/// The time limits every connection is held to.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// To receive a request's whole head.
    pub header: Duration,
    /// Between requests on a kept-alive connection.
    pub keep_alive: Duration,
    /// Longest pause in a request body, and the grace period before the rate applies.
    pub body_stall: Duration,
    /// Slowest average body rate accepted after the grace period (bytes/s; 0: none).
    pub min_body_rate: u64,
    /// Most bytes of a body its handler left unread (a refused upload) read and discarded so
    /// the client sees the answer; past it the connection closes instead.
    pub drain_limit: u64,
}

impl Timeouts {
    pub fn from_config(config: &Config) -> Self {
        let seconds = |s: u64| Duration::from_secs(s.max(1));
        Self {
            header: seconds(config.header_timeout_seconds),
            keep_alive: seconds(config.keep_alive_seconds),
            body_stall: seconds(config.body_timeout_seconds),
            min_body_rate: config.min_body_bytes_per_second,
            drain_limit: config.max_refused_body_bytes,
        }
    }
}

/// Serves `router` on `listener` until the drain begins, then waits for the connections to
/// finish what they are doing, or for the drain's deadline.
pub async fn serve(mut listener: TcpListener, router: Router, timeouts: Timeouts, drain: Drain) {
    // Every connection holds a receiver; `closed()` resolves when the last one is gone.
    let (done_tx, done_rx) = watch::channel(());
    loop {
        let (stream, peer) = tokio::select! {
            // axum's accept retries on errors (EMFILE included) with a pause.
            accepted = Listener::accept(&mut listener) => accepted,
            () = drain.draining() => break,
        };
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            timeouts,
            drain.clone(),
            done_rx.clone(),
        ));
    }
    drop(listener);
    drop(done_rx);
    tokio::select! {
        () = done_tx.closed() => {}
        () = drain.over() => {}
    }
}

/// Serves one connection under its watchdog.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    timeouts: Timeouts,
    drain: Drain,
    _done: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked::new(stream, activity.clone()));
    let service = {
        let activity = activity.clone();
        service_fn(move |request| {
            respond(request, router.clone(), peer, activity.clone(), timeouts)
        })
    };
    let mut builder = http1::Builder::new();
    // hyper's own header timeout also runs while a kept-alive connection waits, which would
    // make the keep-alive timeout the header timeout; the watchdog below keeps them apart.
    builder.header_read_timeout(None);
    let served = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(served);
    let stopping = drain.draining();
    tokio::pin!(stopping);
    let over = drain.over();
    tokio::pin!(over);
    let mut draining = false;
    loop {
        let deadline = tokio::time::Instant::from_std(activity.deadline(&timeouts));
        tokio::select! {
            result = served.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = &mut stopping, if !draining => {
                if activity.is_quiet() {
                    return;
                }
                served.as_mut().graceful_shutdown();
                draining = true;
            }
            () = &mut over => {
                tracing::debug!(%peer, "dropping a connection: the drain is over");
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if activity.expired(&timeouts) {
                    tracing::debug!(%peer, "closing a connection: header or keep-alive timeout");
                    return;
                }
            }
        }
    }
}

/// One request: the peer address in the extensions (`ConnectInfo<SocketAddr>`, as
/// `into_make_service_with_connect_info` gives), the body paced, the router's answer.
async fn respond(
    request: axum::http::Request<Incoming>,
    router: Router,
    peer: SocketAddr,
    activity: Arc<Activity>,
    timeouts: Timeouts,
) -> Result<axum::http::Response<Tracking>, Infallible> {
    let busy = activity.begin();
    let (mut parts, incoming) = request.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    let body = if http_body::Body::is_end_stream(&incoming) {
        Body::new(incoming)
    } else {
        Body::new(body::Paced::new(
            incoming,
            timeouts.body_stall,
            timeouts.min_body_rate,
            activity.clone(),
        ))
    };
    let announced = unread::Announced::of(&parts.headers);
    let (unread, body) = unread::Shared::new(body);
    let request = axum::http::Request::from_parts(parts, body);
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let too_slow = activity.body_was_too_slow();
    let mut response = if too_slow {
        body::too_slow_response()
    } else {
        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            activity.detach();
        }
        response
    };
    if !too_slow
        && response.status() != StatusCode::SWITCHING_PROTOCOLS
        && unread.drain(announced, timeouts.drain_limit).await
    {
        unread::close_after(&mut response);
    }
    Ok(response.map(|body| Tracking { body, _busy: busy }))
}

/// A response body that keeps its request in flight until hyper has written (or dropped) it.
struct Tracking {
    body: Body,
    _busy: Busy,
}

impl http_body::Body for Tracking {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
