//! The GraphQL API: schema assembly from per-area query, mutation and subscription objects.
//! Resolvers are thin: who is asking (`ContextExt`), call the domain, map the result.
mod accounts;
mod chats;
pub mod context;
mod errors;
mod files;
mod live;
pub mod loaders;
mod messages;
mod system;
pub mod types;
mod users;

use async_graphql::{MergedObject, MergedSubscription, Schema};

use crate::app::AppState;

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
);

/// Every subscription, merged from the per-area objects.
#[derive(MergedSubscription, Default)]
#[graphql(name = "Subscription")]
pub struct SubscriptionRoot(system::SystemSubscription, live::LiveSubscription);

fn builder() -> async_graphql::SchemaBuilder<QueryRoot, MutationRoot, SubscriptionRoot> {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot::default(),
    )
}

/// The served schema: state attached, error codes normalised, depth and complexity limited.
pub fn build_schema(app: AppState) -> AppSchema {
    let (depth, complexity) = (app.config.max_query_depth, app.config.max_query_complexity);
    builder()
        .data(loaders::uncached(app.clone()))
        .data(app)
        .extension(errors::ErrorCodes)
        .limit_depth(depth)
        .limit_complexity(complexity)
        .finish()
}

/// The schema in SDL, exactly as served (what `schema.graphql` must contain).
pub fn sdl() -> String {
    builder().finish().sdl()
}
