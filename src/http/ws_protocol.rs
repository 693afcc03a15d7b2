//! The GraphQL-over-WebSocket protocols once the handshake is done (`graphql-transport-ws` and
//! the legacy `graphql-ws`), spoken by goftgu itself rather than by async-graphql's connection
//! type, so that live subscriptions are rendered once per shape (`graphql::fanout`) and each
//! socket's frame is the shared payload spliced behind its operation id. Every operation still
//! starts through the schema (parsing, validation, limits, authorization, errors as always);
//! only the feed of a started `chatEvents`, `myEvents` or `presence` is taken over. Messages and
//! frames are those async-graphql 7.2 sends, byte for byte.
use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use async_graphql::{
    Data, Response,
    futures_util::{FutureExt, Stream, StreamExt, future::BoxFuture, stream::BoxStream},
    http::{ClientMessage, WebSocketProtocols},
};
use axum::extract::ws::{CloseFrame, Message};
use tokio_stream::StreamMap;
use uuid::Uuid;

use super::ws_caps::Operations;
use crate::{
    auth::{AuthState, Viewer},
    events::renders::Rendered,
    graphql::{
        AppSchema,
        fanout::{Handoff, LiveFeed, LiveItem, Rendering, Shape, Shapes},
    },
    limits::ClientIp,
    metrics::Metrics,
};

/// What the connection does after a client message.
pub enum Flow {
    Continue,
    /// Write what is queued (a close frame among it, perhaps) and end the connection.
    Stop,
}

/// One socket's protocol state: its operations, by client id.
pub struct Protocol {
    kind: WebSocketProtocols,
    schema: AppSchema,
    /// The connection's session data: the viewer and where they connect from.
    data: Arc<Data>,
    /// What its renderings run with, made when one first needs it.
    rendering: Arc<RenderingData>,
    viewer: Uuid,
    shapes: Arc<Shapes>,
    metrics: Arc<Metrics>,
    caps: Arc<Operations>,
    /// By id, as its JSON string (quoted and escaped): spliced into every frame as it is.
    running: StreamMap<Arc<str>, Operation>,
}

/// What an operation produced.
pub enum Step {
    /// A `next` (`data`) payload rendered once for a shape, as JSON.
    Payload(Arc<str>),
    /// A `next` (`data`) payload of this socket's own execution, serialized into its frame.
    Response(Box<Response>),
    /// The operation ended by itself: `complete`.
    Done,
}

/// The session data of a socket's renderings (`fanout::Rendering` beside the viewer and where
/// they connect from), made on first use: most sockets never start a rendering, as the first
/// subscriber of a shape renders for every other (and then the topic renders ahead).
pub struct RenderingData {
    viewer: Viewer,
    client: ClientIp,
    data: OnceLock<Arc<Data>>,
}

impl RenderingData {
    fn get(&self) -> Arc<Data> {
        self.data
            .get_or_init(|| Arc::new(session(self.viewer, self.client, true)))
            .clone()
    }
}

/// A connection's session data: the viewer and where they connect from, marked as renderings'
/// when `rendering`.
fn session(viewer: Viewer, client: ClientIp, rendering: bool) -> Data {
    let mut data = Data::default();
    data.insert(AuthState::Authenticated(viewer));
    data.insert(client);
    if rendering {
        data.insert(Rendering);
    }
    data
}

impl Protocol {
    pub fn new(
        kind: WebSocketProtocols,
        schema: AppSchema,
        (viewer, client): (Viewer, ClientIp),
        shapes: Arc<Shapes>,
        metrics: Arc<Metrics>,
        caps: Arc<Operations>,
    ) -> Self {
        Self {
            kind,
            schema,
            data: Arc::new(session(viewer, client, false)),
            rendering: Arc::new(RenderingData {
                viewer,
                client,
                data: OnceLock::new(),
            }),
            viewer: viewer.user_id,
            shapes,
            metrics,
            caps,
            running: StreamMap::new(),
        }
    }

    /// The answer to the accepted `connection_init`.
    pub fn ack() -> Message {
        Message::Text(r#"{"type":"connection_ack"}"#.into())
    }

    /// Handles one text or binary message from the client, queueing what to send in `out`.
    pub fn receive(&mut self, bytes: &[u8], out: &mut Vec<Message>) -> Flow {
        let message = match ClientMessage::from_bytes(bytes) {
            Ok(message) => message,
            Err(err) => {
                out.push(close(1002, err.to_string()));
                return Flow::Stop;
            }
        };
        match message {
            ClientMessage::ConnectionInit { .. } => {
                let reason = "Too many initialisation requests.";
                match self.kind {
                    WebSocketProtocols::SubscriptionsTransportWS => {
                        out.push(text(format!(
                            r#"{{"type":"connection_error","payload":{{"message":{}}}}}"#,
                            json_string(reason)
                        )));
                    }
                    WebSocketProtocols::GraphQLWS => out.push(close(4429, reason.to_string())),
                }
                return Flow::Stop;
            }
            ClientMessage::Start { id, payload } => {
                let key = json_string(&id);
                if !self.caps.admit(&key) {
                    out.push(self.caps.refusal(self.kind, &id));
                    return Flow::Continue;
                }
                let operation = Operation::start(self, payload);
                self.running.insert(Arc::from(key), operation);
            }
            ClientMessage::Stop { id } => {
                let key = json_string(&id);
                if self.running.remove(key.as_str()).is_some() {
                    self.caps.release(&key);
                    out.push(complete(&key));
                }
            }
            ClientMessage::ConnectionTerminate => return Flow::Stop,
            ClientMessage::Ping { .. } => out.push(text(r#"{"type":"pong"}"#.to_string())),
            ClientMessage::Pong { .. } => {}
        }
        Flow::Continue
    }

    /// Whether any operation runs (`next_step` is pending forever otherwise).
    pub fn is_running(&self) -> bool {
        !self.running.is_empty()
    }

    /// The next thing any operation produced, with its id (as JSON).
    pub async fn next_step(&mut self) -> Option<(Arc<str>, Step)> {
        self.running.next().await
    }

    /// What is ready now, without waiting.
    pub fn ready_step(&mut self) -> Option<(Arc<str>, Step)> {
        if self.running.is_empty() {
            return None;
        }
        self.running.next().now_or_never().flatten()
    }

    /// Queues the frame for `step` of operation `id` (its id as JSON).
    pub fn frame(&mut self, id: &str, step: Step, out: &mut Vec<Message>) {
        let kind = match self.kind {
            WebSocketProtocols::GraphQLWS => "next",
            WebSocketProtocols::SubscriptionsTransportWS => "data",
        };
        match step {
            Step::Payload(payload) => {
                let mut frame = head(kind, id, payload.len());
                frame.extend_from_slice(payload.as_bytes());
                out.extend(finish(frame));
            }
            Step::Response(response) => {
                let mut frame = head(kind, id, 256);
                if serde_json::to_writer(&mut frame, &response).is_ok() {
                    out.extend(finish(frame));
                }
            }
            Step::Done => {
                // The map already dropped the ended operation.
                self.caps.release(id);
                out.push(complete(id));
            }
        }
    }
}

/// `{"type":<kind>,"id":<id>,"payload":` of a `next` (`data`) frame, with room for the payload
/// that follows it (spliced in as it is) and the closing brace.
fn head(kind: &str, id: &str, payload: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload + id.len() + 32);
    frame.extend_from_slice(br#"{"type":""#);
    frame.extend_from_slice(kind.as_bytes());
    frame.extend_from_slice(br#"","id":"#);
    frame.extend_from_slice(id.as_bytes());
    frame.extend_from_slice(br#","payload":"#);
    frame
}

fn finish(mut frame: Vec<u8>) -> Option<Message> {
    frame.push(b'}');
    let text = axum::extract::ws::Utf8Bytes::try_from(bytes::Bytes::from(frame)).ok()?;
    Some(Message::Text(text))
}

/// `{"type":"complete","id":<id>}`, the id as JSON.
fn complete(id: &str) -> Message {
    text(format!(r#"{{"type":"complete","id":{id}}}"#))
}

fn close(code: u16, reason: String) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

fn text(frame: String) -> Message {
    Message::Text(frame.into())
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string())
}

/// One running operation: first its execution through the schema; then, for a live
/// subscription whose resolver handed its feed over, that feed rendered per shape.
pub struct Operation {
    phase: Phase,
    finished: bool,
    schema: AppSchema,
    /// The session data its renderings run with.
    data: Arc<RenderingData>,
    viewer: Uuid,
    metrics: Arc<Metrics>,
    shape: Option<Arc<Shape>>,
}

enum Phase {
    Starting {
        responses: BoxStream<'static, Response>,
        handoff: Handoff,
    },
    Live {
        feed: LiveFeed,
        rendering: Option<BoxFuture<'static, Rendered>>,
        _running: Running,
    },
}

/// Counts a live subscription as running while its feed lives (the schema counted it only
/// while it started).
struct Running(Arc<Metrics>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.subscriptions.dec();
    }
}

impl Operation {
    fn start(protocol: &Protocol, mut request: async_graphql::Request) -> Self {
        // Only a subscription can hand a feed over, and only one whose rendering is shared by
        // every viewer is taken over: a selection that depends on the viewer keeps running per
        // socket inside async-graphql, where one event costs one execution of the selection; a
        // rendering replayed through the whole request pipeline costs more than that (see
        // BENCHMARKS.md, scenario 2b), and such a rendering is rarely shared.
        let shape = request
            .query
            .contains("subscription")
            .then(|| protocol.shapes.of(&request))
            .filter(|shape| !shape.per_viewer());
        let handoff = Handoff::default();
        if shape.is_some() {
            request.data.insert(handoff.clone());
        }
        let responses = protocol
            .schema
            .execute_stream_with_session_data(request, protocol.data.clone())
            .boxed();
        Self {
            phase: Phase::Starting { responses, handoff },
            finished: false,
            schema: protocol.schema.clone(),
            data: protocol.rendering.clone(),
            viewer: protocol.viewer,
            metrics: protocol.metrics.clone(),
            shape,
        }
    }

    /// The rendering of `item` for this subscriber: kept on the event for its shape when the
    /// event is shared, so one rendering serves every subscriber of the shape.
    fn render(
        &self,
        shape: &Arc<Shape>,
        item: LiveItem,
    ) -> Result<Rendered, BoxFuture<'static, Rendered>> {
        let Some(delivered) = item.shared().cloned() else {
            let (schema, data, shape) = (self.schema.clone(), self.data.get(), shape.clone());
            return Err(Box::pin(
                async move { shape.render(&schema, data, item).await },
            ));
        };
        let key = shape.key_for(self.viewer);
        // Only a chat event renders the same for every subscriber of the topic (a presence
        // update is made per watcher).
        let chat = matches!(item, LiveItem::Chat(_));
        // What a rendering needs is cloned (and the rendering data made) only when this
        // subscriber starts it: most find it started, or done ahead.
        let (rendering, started) = delivered.renders.find_or_start(key, || {
            let (schema, data, shape) = (self.schema.clone(), self.data.get(), shape.clone());
            Box::pin(async move { shape.render(&schema, data, item).await })
        });
        if started && chat {
            // This shape renders the topic's next events ahead: its subscribers wake once each.
            shape.render_ahead(&self.schema, &self.data.get(), &delivered);
        }
        match rendering.peek() {
            Some(rendered) => Ok(rendered.clone()),
            None => Err(Box::pin(rendering)),
        }
    }
}

impl Stream for Operation {
    type Item = Step;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Step>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        loop {
            let live = match &mut this.phase {
                Phase::Starting { responses, handoff } => match responses.poll_next_unpin(cx) {
                    Poll::Ready(Some(response)) => {
                        return Poll::Ready(Some(Step::Response(Box::new(response))));
                    }
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => match handoff.take() {
                        Some(feed) if this.shape.is_some() => feed,
                        _ => {
                            this.finished = true;
                            return Poll::Ready(Some(Step::Done));
                        }
                    },
                },
                Phase::Live {
                    feed, rendering, ..
                } => {
                    if let Some(pending) = rendering {
                        let rendered = match pending.poll_unpin(cx) {
                            Poll::Ready(rendered) => rendered,
                            Poll::Pending => return Poll::Pending,
                        };
                        *rendering = None;
                        if let Some(payload) = rendered {
                            this.metrics.deliveries.inc();
                            return Poll::Ready(Some(Step::Payload(payload)));
                        }
                        continue;
                    }
                    let item = match feed.poll_next_unpin(cx) {
                        Poll::Ready(Some(item)) => item,
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(None) => {
                            this.finished = true;
                            return Poll::Ready(Some(Step::Done));
                        }
                    };
                    let Some(shape) = this.shape.clone() else {
                        continue;
                    };
                    match this.render(&shape, item) {
                        Ok(Some(payload)) => {
                            this.metrics.deliveries.inc();
                            return Poll::Ready(Some(Step::Payload(payload)));
                        }
                        Ok(None) => continue,
                        Err(pending) => {
                            if let Phase::Live { rendering, .. } = &mut this.phase {
                                *rendering = Some(pending);
                            }
                            continue;
                        }
                    }
                }
            };
            this.metrics.subscriptions.inc();
            this.phase = Phase::Live {
                feed: live,
                rendering: None,
                _running: Running(this.metrics.clone()),
            };
        }
    }
}
