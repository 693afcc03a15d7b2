//! The subscription WebSocket. Both `graphql-transport-ws` (graphql-ws) and the legacy `graphql-ws`
//! (subscriptions-transport-ws) are spoken. This module upgrades the request and runs the
//! connection's life, in a span of its own; the handshake (`connection_init` and its token) is in
//! `ws_handshake`, the caps (sockets per instance and per user, operations per socket) in
//! `ws_caps`, the protocol's messages and operations in `ws_protocol`. A stopping instance
//! closes its sockets with 1012 (service restart).
use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use async_graphql::{
    futures_util::SinkExt,
    http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols},
};
use axum::{
    extract::{
        FromRequestParts, State, WebSocketUpgrade,
        ws::{CloseFrame, Message, WebSocket},
    },
    http::{HeaderMap, StatusCode, header::SEC_WEBSOCKET_PROTOCOL, request::Parts},
    response::{IntoResponse, Response},
};
use tracing::Instrument;

use super::{
    HttpState,
    ws_caps::{self, MESSAGE_TOO_BIG, Operations, SocketSlot},
    ws_handshake::{self, Accepted},
    ws_protocol::{Flow, Protocol},
    ws_signals::{CLOSING, Enrolled, OVER, PING},
};
use crate::{
    domain::{presence, sessions},
    error::AppError,
    events::{Event, Topic},
};
use tokio::sync::broadcast;

/// Per-connection read buffer: small, because most sockets are idle subscribers.
const READ_BUFFER: usize = 4 * 1024;
/// Largest message a client may send (operations are small).
const MAX_MESSAGE: usize = 256 * 1024;
/// Outgoing bytes a slow client may have queued before its socket is closed.
const MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Bytes of frames gathered before they go to the socket without waiting for the flush.
const WRITE_BATCH: usize = 64 * 1024;

/// `GET /graphql/ws`.
pub async fn upgrade(State(state): State<HttpState>, mut parts: Parts) -> Response {
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => accept(state, &mut parts, upgrade).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// Negotiates the sub-protocol and upgrades; 400 when the client offers neither protocol.
pub async fn accept(state: HttpState, parts: &mut Parts, upgrade: WebSocketUpgrade) -> Response {
    let Some(protocol) = negotiated(&parts.headers) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "detail": "Sec-WebSocket-Protocol must offer graphql-transport-ws or graphql-ws"
            })),
        )
            .into_response();
    };
    if state.app.drain.is_draining() {
        return draining();
    }
    // Counted from the upgrade on; the slot is freed when the socket (or a failed upgrade) ends.
    let Some(slot) = state.sockets.reserve() else {
        return ws_caps::instance_full();
    };
    // The drain waits for the socket until its goodbye is out.
    let hold = state.app.drain.hold();
    let client = super::client_ip::of(parts, &state.app.config.trusted_proxies);
    let span = connection_span(super::trace::request_id(&parts.extensions));
    let signal = state.signals.enroll();
    let start = Box::new(Start {
        state,
        protocol,
        slot,
        client,
    });
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(READ_BUFFER)
        // Frames ready together are written together (`write`): one flush, one syscall.
        .write_buffer_size(WRITE_BATCH)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .max_message_size(MAX_MESSAGE)
        // A frame announcing more than a message may hold is refused from its header, before
        // its bytes are buffered.
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| connection(start, socket, hold, signal).instrument(span))
}

/// The refusal of an upgrade while the instance is stopping: another instance will take it.
fn draining() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(axum::http::header::RETRY_AFTER, "1")],
        axum::Json(serde_json::json!({ "detail": "draining" })),
    )
        .into_response()
}

fn negotiated(headers: &HeaderMap) -> Option<WebSocketProtocols> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().parse().ok())
}

/// Numbers the connections of this process, for their spans.
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// The connection's span, its own trace: an id of its own, the upgrade request's id, and the
/// user once the handshake accepted them.
fn connection_span(request_id: &str) -> tracing::Span {
    let id = CONNECTIONS.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info_span!(
        parent: None,
        "ws",
        conn = id,
        request = request_id,
        user = tracing::field::Empty
    )
}

/// What a connection starts with. Boxed: the upgrade's task then carries a pointer, not this,
/// for the connection's whole life.
struct Start {
    state: HttpState,
    protocol: WebSocketProtocols,
    /// The instance's count of sockets, released when the connection ends.
    slot: SocketSlot,
    client: crate::limits::ClientIp,
}

/// The connection, until it ends or the drain's deadline passes (whatever is left is dropped
/// then). The instance signals pings, closing and the deadline through `signal`.
async fn connection(
    start: Box<Start>,
    mut socket: WebSocket,
    hold: crate::drain::Hold,
    signal: Enrolled,
) {
    tokio::select! {
        () = serve(start, &mut socket, &signal) => {}
        _ = signal.raised(OVER) => {}
    }
    drop(hold);
}

/// The connection's life: the handshake, then the protocol (`ws_protocol`) while presence
/// counts the user online, until the client leaves or the session ends. One task does it all:
/// it reads the client, runs the operations, pings, and writes what is ready in one go.
///
/// The task lives as long as the socket, mostly idle, and an async fn is as large as all it
/// holds across its awaits, its arguments included: the set-up (handshake, presence) and the
/// goodbye run boxed, so their state is freed when they are done, and the loop keeps what it
/// uses in place (`Live`), where the set-up left it.
async fn serve(start: Box<Start>, socket: &mut WebSocket, signal: &Enrolled) {
    let Some(live) = Box::pin(open(start, socket, signal)).await else {
        return;
    };
    let revoked = session_end(&live.app, live.viewer);
    tokio::pin!(revoked);
    let mut operations = live.operations;
    let mut out = vec![Protocol::ack()];
    let goodbye = loop {
        if !out.is_empty() && write(socket, &mut out).await.is_err() {
            break None;
        }
        let flow = tokio::select! {
            message = socket.recv() => match message {
                Some(Ok(Message::Text(text))) => operations.receive(text.as_bytes(), &mut out),
                Some(Ok(Message::Binary(bytes))) => operations.receive(&bytes, &mut out),
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Ok(_)) => Flow::Continue,
                Some(Err(err)) => {
                    if ws_caps::is_too_big(&err) {
                        let frame = CloseFrame { code: MESSAGE_TOO_BIG, reason: "Message too big".into() };
                        break Some(frame);
                    }
                    break None;
                }
            },
            Some((id, step)) = operations.next_step(), if operations.is_running() => {
                operations.frame(&id, step, &mut out);
                Flow::Continue
            }
            flags = signal.raised(PING | CLOSING) => {
                // The instance is stopping: the subscriptions end here, the client reconnects
                // elsewhere.
                if flags & CLOSING != 0 {
                    break Some(restarting());
                }
                out.push(Message::Ping(Default::default()));
                Flow::Continue
            }
            reason = &mut revoked => {
                break Some(CloseFrame { code: 4403, reason: format!("Forbidden: {reason}").into() });
            }
        };
        // Whatever else is ready now goes out in the same write.
        while out.len() < COALESCE
            && let Some((id, step)) = operations.ready_step()
        {
            operations.frame(&id, step, &mut out);
        }
        if let Flow::Stop = flow {
            let _ = write(socket, &mut out).await;
            break None;
        }
    };
    drop(operations);
    Box::pin(farewell(socket, out, goodbye)).await;
    Box::pin(presence::disconnect(&live.app, live.viewer.user_id)).await;
}

/// An accepted connection, counted online: what its loop needs and nothing more.
struct Live {
    app: crate::state::AppState,
    viewer: crate::auth::Viewer,
    operations: Protocol,
    _user_slot: ws_caps::UserSlot,
    _slot: SocketSlot,
}

/// The handshake, then presence: `None` when the client was refused or the instance stops.
async fn open(start: Box<Start>, socket: &mut WebSocket, signal: &Enrolled) -> Option<Live> {
    let Start {
        state,
        protocol,
        slot,
        client,
    } = *start;
    let handshake = ws_handshake::accept(&state, socket, protocol);
    let accepted = tokio::select! {
        accepted = handshake => accepted,
        _ = signal.raised(CLOSING) => {
            let _ = socket.send(Message::Close(Some(restarting()))).await;
            return None;
        }
    };
    let Accepted { viewer, user_slot } = accepted?;
    let user = viewer.user_id;
    tracing::Span::current().record("user", tracing::field::display(user));
    let app = state.app;
    let caps = Operations::new(app.config.max_subscriptions_per_socket);
    let operations = Protocol::new(
        protocol,
        state.schema,
        (viewer, client),
        state.shapes,
        app.metrics.clone(),
        caps,
    );
    presence::connect(&app, user).await;
    Some(Live {
        app,
        viewer,
        operations,
        _user_slot: user_slot,
        _slot: slot,
    })
}

/// What is still queued, then the close frame, for at most 5 seconds.
async fn farewell(socket: &mut WebSocket, mut out: Vec<Message>, goodbye: Option<CloseFrame>) {
    let goodbye = async {
        if !out.is_empty() {
            write(socket, &mut out).await?;
        }
        match goodbye {
            Some(frame) => socket.send(Message::Close(Some(frame))).await,
            None => socket.close().await,
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), goodbye).await;
}

/// Frames written with one flush (one write to the socket, mostly) when that many are ready.
const COALESCE: usize = 64;

/// Writes the queued frames with a single flush. The queue's memory goes with them: a socket
/// is idle far more often than it writes.
async fn write(socket: &mut WebSocket, out: &mut Vec<Message>) -> Result<(), axum::Error> {
    for message in std::mem::take(out) {
        socket.feed(message).await?;
    }
    socket.flush().await
}

/// Resolves when the connection's session ends: its token expires, or it is revoked (logout,
/// password change) on any instance. The socket is then closed, so a revoked token stops
/// receiving events at once rather than at its next subscription. The session is checked at
/// the start (through the session cache, as the handshake just verified it) and its row read
/// again after missed events; when the database cannot answer, that is no verdict: the socket
/// stays open and the row is asked for again a little later.
async fn session_end(app: &crate::state::AppState, viewer: crate::auth::Viewer) -> &'static str {
    use tokio::time::Instant;
    let mut revocations = app.bus.subscribe(Topic::User(viewer.user_id));
    // One timer for both: the session's end, once the database told it, and the next time to
    // ask the database (at once, after missed events, or a little later when it did not answer).
    let mut expires_at: Option<Instant> = None;
    let mut check_at: Option<Instant> = Some(Instant::now());
    // Whether the next check must read the row (after missed events), not the cache.
    let mut stored = false;
    let timer = tokio::time::sleep_until(Instant::now());
    tokio::pin!(timer);
    loop {
        tokio::select! {
            _ = &mut timer => {
                if check_at.is_some_and(|at| at <= Instant::now()) {
                    let check = if stored {
                        Box::pin(sessions::stored_expiry(app, &viewer)).await
                    } else {
                        Box::pin(sessions::expiry(app, &viewer)).await
                    };
                    match check {
                        Ok(end) => {
                            let left = (end - chrono::Utc::now()).to_std().unwrap_or_default();
                            let now = Instant::now();
                            expires_at = Some(now.checked_add(left).unwrap_or(now + NEVER));
                            check_at = None;
                        }
                        Err(AppError::Unauthenticated(_)) => return "token revoked or expired",
                        Err(err) => {
                            err.log();
                            check_at = Some(Instant::now() + SESSION_RECHECK);
                        }
                    }
                }
                if expires_at.is_some_and(|at| at <= Instant::now()) {
                    return "token expired";
                }
                let next = expires_at.into_iter().chain(check_at).min();
                timer.as_mut().reset(next.unwrap_or_else(|| Instant::now() + NEVER));
            }
            event = revocations.recv() => match event {
                Ok(event) => {
                    if let Event::SessionsRevoked { only, except, .. } = event.event
                        && (only == Some(viewer.session_id)
                            || (only.is_none() && except != Some(viewer.session_id)))
                    {
                        return "token revoked";
                    }
                    // The link to other instances was down: a revocation may have been lost.
                    if matches!(event.event, Event::LinkRestored) {
                        check_at = Some(Instant::now());
                        stored = true;
                        timer.as_mut().reset(Instant::now());
                    }
                }
                // Missed events might include a revocation: ask the database.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    check_at = Some(Instant::now());
                    stored = true;
                    timer.as_mut().reset(Instant::now());
                }
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

/// Close code 1012 (service restart): graphql-ws and browsers' clients reconnect after it.
pub const SERVICE_RESTART: u16 = 1012;

/// The goodbye of a stopping instance.
fn restarting() -> CloseFrame {
    CloseFrame {
        code: SERVICE_RESTART,
        reason: "server restarting, reconnect".into(),
    }
}

/// A timer deadline for "nothing due" (a year).
const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// How soon a socket asks again for its session after the database could not answer.
const SESSION_RECHECK: Duration = Duration::from_secs(crate::error::UNAVAILABLE_RETRY_AFTER);
