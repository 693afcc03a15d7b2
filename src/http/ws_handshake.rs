//! The WebSocket handshake, before the protocol (`ws_protocol`) takes the socket: wait for `connection_init`,
//! authenticate its token, claim the user's socket slot, and refuse with the protocol's own
//! signal when any of it fails. Browsers cannot send headers on a WebSocket, so the token comes
//! in the `connection_init` payload. This is the socket's edge: a token that could not be checked
//! (an outage) is logged here.
use std::time::Duration;

use async_graphql::{
    futures_util::{Sink, SinkExt, StreamExt},
    http::WebSocketProtocols,
};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use serde_json::Value;

use super::{
    HttpState, auth,
    ws_caps::{self, MESSAGE_TOO_BIG, TOO_MANY_SOCKETS, UserSlot},
};
use crate::{
    auth::{AuthState, Viewer},
    error::AppError,
};

/// How long a client has to send `connection_init` (graphql-ws closes with 4408 after it).
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection the handshake accepted.
pub struct Accepted {
    pub viewer: Viewer,
    /// The user's socket slot, held for the connection's life.
    pub user_slot: UserSlot,
}

/// Runs the handshake on a fresh socket; `None` when it was refused (the refusal is sent) or the
/// client went away.
pub async fn accept(
    state: &HttpState,
    socket: &mut WebSocket,
    protocol: WebSocketProtocols,
) -> Option<Accepted> {
    let sink = socket;
    let init = match first_text(sink).await {
        Ok(First::Text(text)) => text,
        Ok(First::Gone) => return None,
        Ok(First::TooBig) => {
            return refuse(sink, protocol, MESSAGE_TOO_BIG, "Message too big").await;
        }
        Err(_) => {
            let reason = "Connection initialisation timeout";
            return refuse(sink, protocol, 4408, reason).await;
        }
    };
    let message: Value = serde_json::from_str(init.as_str()).unwrap_or(Value::Null);
    if message.get("type").and_then(Value::as_str) != Some("connection_init") {
        let reason = "Unauthorized: send connection_init first";
        return refuse(sink, protocol, 4401, reason).await;
    }
    let viewer = match authenticate(state, message.get("payload")).await {
        Ok(viewer) => viewer,
        Err((code, reason)) => return refuse(sink, protocol, code, &reason).await,
    };
    let Some(user_slot) = state.sockets.claim_for(viewer.user_id) else {
        let reason = format!(
            "Too many sockets for this user (at most {}); close one first",
            state.sockets.max_per_user()
        );
        return refuse(sink, protocol, TOO_MANY_SOCKETS, &reason).await;
    };
    Some(Accepted { viewer, user_slot })
}

/// The first thing a socket sends.
enum First {
    Text(Utf8Bytes),
    TooBig,
    Gone,
}

/// Waits (at most `INIT_TIMEOUT`) for the first text message.
async fn first_text(incoming: &mut WebSocket) -> Result<First, tokio::time::error::Elapsed> {
    tokio::time::timeout(INIT_TIMEOUT, async {
        while let Some(message) = incoming.next().await {
            match message {
                Ok(Message::Text(text)) => return First::Text(text),
                Ok(_) => {}
                Err(err) if ws_caps::is_too_big(&err) => return First::TooBig,
                Err(_) => return First::Gone,
            }
        }
        First::Gone
    })
    .await
}

/// The viewer named by the `connection_init` payload, or the close code and reason to refuse it.
async fn authenticate(state: &HttpState, payload: Option<&Value>) -> Result<Viewer, (u16, String)> {
    let auth = match token_from_payload(payload) {
        Some(token) => Box::pin(auth::from_token(&state.app, &token)).await,
        None => {
            AuthState::Rejected("authentication required: put the token in connection_init".into())
        }
    };
    match auth {
        AuthState::Authenticated(viewer) => Ok(viewer),
        // Not a verdict on the token: a retryable close, so clients reconnect later instead of
        // signing their user out.
        AuthState::Unverified(err) => {
            err.log();
            let (code, reason) = unverified_close(&err);
            Err((code, reason.into()))
        }
        AuthState::Rejected(reason) => Err((4403, format!("Forbidden: {reason}"))),
        AuthState::Anonymous => Err((4403, "Forbidden: authentication required".into())),
    }
}

/// The close for a token that could not be checked: 1013 "try again later" when the database is
/// unreachable (graphql-ws clients reconnect on it), 1011 for any other server error.
fn unverified_close(err: &AppError) -> (u16, &'static str) {
    match err {
        AppError::Unavailable { .. } => (1013, "Try again later: the service is unavailable"),
        _ => (1011, "Internal server error"),
    }
}

/// The token from a `connection_init` payload: `{"Authorization": "Bearer …"}` (any case),
/// `{"token": "…"}`, or the same inside `{"headers": {…}}` as some clients send it.
fn token_from_payload(payload: Option<&Value>) -> Option<String> {
    let object = payload?.as_object()?;
    for (key, value) in object {
        let Some(text) = value.as_str() else { continue };
        if key.eq_ignore_ascii_case("authorization") {
            return auth::bearer_token(text).map(str::to_owned);
        }
        if key.eq_ignore_ascii_case("token") || key.eq_ignore_ascii_case("accessToken") {
            return Some(text.trim().trim_start_matches("Bearer ").to_string());
        }
    }
    object
        .get("headers")
        .and_then(|h| token_from_payload(Some(h)))
}

/// Refuses a connection the way each protocol expects: `graphql-transport-ws` closes with the
/// code; legacy `graphql-ws` sends `connection_error` first, then closes. Always `None`, the
/// handshake's answer for a refused socket.
async fn refuse<S, T>(
    sink: &mut S,
    protocol: WebSocketProtocols,
    code: u16,
    reason: &str,
) -> Option<T>
where
    S: Sink<Message> + Unpin,
{
    if protocol == WebSocketProtocols::SubscriptionsTransportWS {
        let error =
            serde_json::json!({ "type": "connection_error", "payload": { "message": reason } });
        let _ = sink.send(Message::Text(error.to_string().into())).await;
    }
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
    None
}
