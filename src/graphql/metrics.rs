//! Counts every GraphQL root field (by type, field and outcome: `ok` or the error's code) with
//! its latency, and every running subscription with what it delivers, into `state.metrics`.
//! Labels are the schema's own root field names, never client-chosen operation names, so the
//! number of series stays bounded.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use async_graphql::{
    Response, ServerError, ServerResult, Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextResolve, NextSubscribe, ResolveInfo,
    },
    futures_util::{StreamExt, stream::BoxStream},
};

use crate::{error::AppError, metrics::Metrics};

/// The extension's factory (installed once in `build_schema`).
pub struct OperationMetrics(pub Arc<Metrics>);

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Recorder(self.0.clone()))
    }
}

struct Recorder(Arc<Metrics>);

/// The code a failed root field reports to clients.
fn outcome(error: &ServerError) -> String {
    if let Some(app) = error.source::<AppError>() {
        return app.code().to_string();
    }
    error
        .extensions
        .as_ref()
        .and_then(|e| e.get("code"))
        .and_then(|v| match v {
            Value::String(code) => Some(code.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "BAD_USER_INPUT".to_string())
}

fn root_type(parent: &str) -> Option<&'static str> {
    match parent {
        "Query" => Some("Query"),
        "Mutation" => Some("Mutation"),
        "Subscription" => Some("Subscription"),
        _ => None,
    }
}

/// Decrements the running-subscriptions gauge when the subscription's stream is dropped.
struct Running(Arc<Metrics>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.subscriptions.dec();
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Recorder {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let root = info
            .path_node
            .parent
            .is_none()
            .then(|| root_type(info.parent_type))
            .flatten()
            .filter(|_| !info.is_for_introspection);
        let Some(kind) = root else {
            return next.run(ctx, info).await;
        };
        let field = info.name.to_string();
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        let took: Duration = started.elapsed();
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(error) => outcome(error),
        };
        self.0.operation(kind, &field, &outcome, took);
        result
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        // A rendering of a shared live subscription is that subscription's delivery, which
        // the socket layer counts (`http::ws_protocol`), not a subscription of its own.
        if super::fanout::Rendering::is(ctx) {
            return next.run(ctx, stream);
        }
        let metrics = self.0.clone();
        metrics.subscriptions.inc();
        let running = Running(metrics.clone());
        next.run(ctx, stream)
            .map(move |response| {
                let _running = &running;
                metrics.deliveries.inc();
                response
            })
            .boxed()
    }
}
