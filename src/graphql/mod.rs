//! The GraphQL API: schema assembly from per-area query, mutation and subscription objects.
//! Resolvers are thin: who is asking (`ContextExt`), call the domain, map the result.
mod accounts;
pub mod budget;
mod chats;
pub mod context;
mod errors;
mod files;
pub mod guard;
mod live;
pub mod loaders;
mod messages;
mod metrics;
mod playback;
mod system;
pub mod types;
mod users;
mod voice;

use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::state::AppState;

/// The executable schema type.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Every query, merged from the per-area objects.
#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    accounts::AccountQuery,
    users::UserQuery,
    chats::ChatQuery,
    messages::MessageQuery,
    live::LiveQuery,
    files::FileQuery,
    playback::PlaybackQuery,
    voice::VoiceQuery,
);

/// Every mutation, merged from the per-area objects.
#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    accounts::AccountMutation,
    chats::ChatMutation,
    messages::MessageMutation,
    live::LiveMutation,
    files::FileMutation,
    playback::PlaybackMutation,
    voice::VoiceMutation,
);

/// Every subscription, merged from the per-area objects.
#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(
    system::SystemSubscription,
    live::LiveSubscription,
    voice::VoiceSubscription,
);

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
}

/// The served schema: state attached, spans for each operation (async-graphql's `Tracing`,
/// target `async_graphql`, off unless `RUST_LOG` asks for it), error codes normalised and
/// internal errors logged, documents measured before validation, depth and complexity limited,
/// introspection and suggestions as configured.
pub fn build_schema(app: AppState) -> AppSchema {
    let config = app.config.clone();
    let app_metrics = app.metrics.clone();
    let mut schema = builder()
        .data(loaders::uncached(app.clone()))
        .data(app)
        // First, so the errors logged below are inside its request span.
        .extension(async_graphql::extensions::Tracing)
        .extension(errors::ErrorCodes)
        .extension(metrics::OperationMetrics(app_metrics))
        .extension(budget::RequestBudget(budget::Budget::from_config(&config)))
        .limit_depth(config.max_query_depth)
        .limit_complexity(config.max_query_complexity);
    if !config.introspection {
        schema = schema.disable_introspection();
    }
    if !config.field_suggestions {
        schema = schema.disable_suggestions();
    }
    schema.finish()
}

/// The schema in SDL, exactly as served (what `schema.graphql` must contain).
pub fn sdl() -> String {
    builder().finish().sdl()
}
