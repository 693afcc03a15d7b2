//! The GraphQL API: schema assembly from per-area query, mutation and subscription objects.
//! Resolvers are thin: who is asking (`ContextExt`), call the domain, map the result.
mod accounts;
pub mod budget;
mod chats;
pub mod context;
pub mod documents;
mod errors;
pub mod fanout;
mod files;
pub mod guard;
mod kept;
mod live;
pub mod loaders;
mod messages;
mod metrics;
mod notifications;
pub mod partial;
mod people;
mod playback;
mod polls;
mod push;
mod search;
mod system;
mod threads;
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
    people::PeopleQuery,
    notifications::NotificationQuery,
    push::PushQuery,
    chats::ChatQuery,
    messages::MessageQuery,
    kept::KeptQuery,
    search::SearchQuery,
    threads::ThreadQuery,
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
    people::PeopleMutation,
    notifications::NotificationMutation,
    push::PushMutation,
    chats::ChatMutation,
    messages::MessageMutation,
    kept::KeptMutation,
    polls::PollMutation,
    threads::ThreadMutation,
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

pub(crate) fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
}

/// The served schema: state attached, spans for each operation (async-graphql's `Tracing`, only
/// when `RUST_LOG` enables target `async_graphql`), error codes normalised and internal errors
/// logged, failed nullable fields null beside their error (`partial`), documents measured before
/// validation, depth and complexity limited, introspection and suggestions as configured;
/// parsed and validated documents are kept (`documents`).
pub fn build_schema(
    app: AppState,
    documents: std::sync::Arc<documents::DocumentCache>,
) -> AppSchema {
    let config = app.config.clone();
    let app_metrics = app.metrics.clone();
    let mut schema = builder().data(loaders::uncached(app.clone())).data(app);
    // A span per field costs every field of every answer its bookkeeping even when no
    // subscriber listens, so the spans are there only when the log filter asks for them.
    if tracing::enabled!(target: "async_graphql", tracing::Level::INFO) {
        // First, so the errors logged below are inside its request span.
        schema = schema.extension(async_graphql::extensions::Tracing);
    }
    let mut schema = schema
        .extension(errors::ErrorCodes)
        .extension(partial::PartialResults)
        .extension(metrics::OperationMetrics(app_metrics))
        .extension(budget::RequestBudget(
            budget::Budget::from_config(&config),
            documents.clone(),
        ))
        // Last, so the extensions above see a cached validation as they would a computed one.
        .extension(documents::CachedValidation(documents))
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
