//! HTTP transport: the GraphQL endpoint (POST, GraphiQL on GET, WebSocket upgrade), health and
//! the published schema. Handlers authenticate at the edge and hand over to GraphQL or the domain.
mod auth;
mod graphql;
mod health;
mod playground;
mod ws;

use axum::{Router, response::IntoResponse, routing::get};
use tower_http::{
    cors::{Any, CorsLayer},
    trace::TraceLayer,
};

use crate::{app::AppState, error::AppError, graphql::AppSchema};

/// What every handler receives.
#[derive(Clone)]
pub struct HttpState {
    pub app: AppState,
    pub schema: AppSchema,
}

/// The whole HTTP surface.
pub fn router(app: AppState, schema: AppSchema) -> Router {
    // Bearer tokens, not cookies, carry identity, so any origin may call the API.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods(Any)
        .allow_headers(Any);
    Router::new()
        .route("/graphql", get(graphql::get_or_upgrade).post(graphql::post))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/schema.graphql", get(graphql::sdl))
        .route("/healthz", get(health::healthz))
        .fallback(not_found)
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(HttpState { app, schema })
}

async fn not_found() -> impl IntoResponse {
    AppError::NotFound("no such endpoint".into())
}
