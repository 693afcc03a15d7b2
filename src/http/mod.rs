//! HTTP transport: the GraphQL endpoint (POST, GraphiQL on GET, WebSocket upgrade), health,
//! readiness and the published schema. Handlers authenticate at the edge and hand over to GraphQL or the domain.
mod auth;
mod client_ip;
mod cors;
mod downloads;
mod errors;
mod graphql;
mod health;
mod metrics;
mod multipart;
mod object_downloads;
mod playground;
mod trace;
mod uploads;
mod voice_page;
mod ws;
mod ws_caps;
mod ws_handshake;
mod ws_protocol;
mod ws_signals;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    response::IntoResponse,
    routing::{get, post},
};

use crate::{error::AppError, graphql::AppSchema, state::AppState};

/// What every handler receives.
#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    pub schema: AppSchema,
    /// Open WebSockets, counted against their caps.
    pub sockets: std::sync::Arc<ws_caps::Sockets>,
    /// What the instance tells its sockets at once: pings due, closing, the drain over.
    pub signals: std::sync::Arc<ws_signals::Signals>,
    /// Parsed and validated GraphQL documents, by their text (shared with the schema).
    pub documents: std::sync::Arc<crate::graphql::documents::DocumentCache>,
    /// Live subscription shapes, so sockets that subscribe alike share each event's rendering.
    pub shapes: std::sync::Arc<crate::graphql::fanout::Shapes>,
    /// Documents of automatic persisted queries, by hash.
    pub persisted: std::sync::Arc<graphql::persisted::PersistedQueries>,
}

/// The whole HTTP surface.
pub fn router(
    app: AppState,
    schema: AppSchema,
    documents: std::sync::Arc<crate::graphql::documents::DocumentCache>,
) -> Router {
    let cors = cors::layer(&app.config);
    let routes = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/schema.graphql", get(graphql::sdl))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/playground/voice", get(voice_page::page))
        .route("/playground/assets/{file}", get(playground::asset))
        .route("/files/{id}", get(downloads::file))
        .route("/music/", get(uploads::music_list))
        .route(
            "/music/{id}",
            get(downloads::music).delete(uploads::music_delete),
        )
        .merge(upload_routes())
        .fallback(not_found)
        .layer(cors);
    trace::traced(routes).with_state(HttpState {
        sockets: ws_caps::Sockets::new(&app.config),
        signals: ws_signals::Signals::new(app.drain.clone(), app.config.ws_ping_seconds),
        documents,
        shapes: Default::default(),
        persisted: std::sync::Arc::new(graphql::persisted::PersistedQueries::new(app.bus.redis())),
        app,
        schema,
    })
}

/// The upload endpoints: no whole-body limit here, each file's limit is enforced as it streams.
fn upload_routes() -> Router<HttpState> {
    Router::new()
        .route("/api/upload", post(uploads::upload))
        .route("/chat/upload_media/", post(uploads::upload))
        .route("/api/users/me/profile-image", post(uploads::profile_image))
        .route(
            "/api/chats/{chat_id}/messages/file",
            post(uploads::file_message),
        )
        .route(
            "/api/chats/{chat_id}/group-image",
            post(uploads::group_image),
        )
        .route(
            "/api/conversations/{conversation_id}/messages/{message_id}/attachments/",
            post(uploads::message_attachment),
        )
        .route("/music/upload", post(uploads::music_upload))
        .layer(DefaultBodyLimit::disable())
}

async fn not_found() -> impl IntoResponse {
    AppError::NotFound("no such endpoint".into())
}
