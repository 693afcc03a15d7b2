//! `AppError` as a GraphQL error, and the extension every response passes through. Errors from
//! the domain carry their code (and keep the `AppError` as the error's `source`); what is left
//! are the framework's own (syntax, unknown fields, bad argument types, depth and complexity
//! limits), which are all problems with the client's input. Since every response (and every
//! subscription item) passes the extension, it is the GraphQL edge where internal errors are
//! logged, once, with their cause chain.
use std::{borrow::Cow, sync::Arc};

use async_graphql::{
    ErrorExtensionValues, PathSegment, Response, ServerError,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest, NextSubscribe},
    futures_util::{StreamExt, stream::BoxStream},
};

use crate::error::{AppError, Fault};

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let mut ext = ErrorExtensionValues::default();
        ext.set("code", err.code());
        if let Some(field) = err.field() {
            ext.set("field", graphql_name(field).as_ref());
        }
        if let Some(seconds) = err.retry_after() {
            ext.set("retryAfter", seconds);
        }
        async_graphql::Error {
            message: err.message().to_string(),
            source: Some(Arc::new(err)),
            extensions: Some(ext),
        }
    }
}

/// The GraphQL spelling of an input's name: the domain may name a field as REST spells it
/// (`room_id`), GraphQL clients know it as `roomId`.
fn graphql_name(field: &str) -> Cow<'_, str> {
    if !field.contains('_') {
        return Cow::Borrowed(field);
    }
    let mut name = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        match c {
            '_' => upper = !name.is_empty(),
            c if upper => {
                name.extend(c.to_uppercase());
                upper = false;
            }
            c => name.push(c),
        }
    }
    Cow::Owned(name)
}

/// Extension factory registered on the schema.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodesExtension)
    }
}

struct ErrorCodesExtension;

/// Codes the framework's errors and logs the internal ones.
fn at_the_edge(mut response: Response) -> Response {
    log_faults(&response.errors);
    response.errors.iter_mut().for_each(add_code);
    response
}

fn add_code(error: &mut ServerError) {
    let ext = error.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", "BAD_USER_INPUT");
    }
}

/// Logs each internal error of a response once: one failed batch load reaches every field that
/// waited for it, as clones of the same error.
fn log_faults(errors: &[ServerError]) {
    let mut logged: Vec<&Fault> = Vec::new();
    for error in errors {
        let Some(err) = error.source::<AppError>() else {
            continue;
        };
        let Some(fault) = err.fault() else { continue };
        if logged.iter().any(|seen| seen.same_as(fault)) {
            continue;
        }
        logged.push(fault);
        tracing::error_span!("graphql", path = %dotted(&error.path)).in_scope(|| err.log());
    }
}

/// A response path as `chats.0.lastMessage`.
fn dotted(path: &[PathSegment]) -> String {
    let segments: Vec<String> = path
        .iter()
        .map(|segment| match segment {
            PathSegment::Field(name) => name.clone(),
            PathSegment::Index(index) => index.to_string(),
        })
        .collect();
    segments.join(".")
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodesExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        at_the_edge(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream).map(at_the_edge).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphql_names_are_camel_case() {
        assert_eq!(graphql_name("room_id"), "roomId");
        assert_eq!(graphql_name("reply_to_id"), "replyToId");
        assert_eq!(graphql_name("roomId"), "roomId");
        assert_eq!(graphql_name("file"), "file");
        assert_eq!(graphql_name("_private"), "private");
    }

    #[test]
    fn the_graphql_error_keeps_the_cause_but_shows_only_the_generic_text() {
        let err = AppError::internal(std::io::Error::other("password=hunter2"));
        let graphql = async_graphql::Error::from(err);
        assert_eq!(graphql.message, "internal server error");
        let kept = graphql
            .source
            .as_ref()
            .and_then(|s| s.downcast_ref::<AppError>())
            .and_then(AppError::fault)
            .map(ToString::to_string);
        assert_eq!(kept.as_deref(), Some("password=hunter2"));
        let shown = serde_json::to_string(&graphql.extensions).unwrap_or_default();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("INTERNAL"), "{shown}");
    }

    #[test]
    fn input_errors_name_the_graphql_field() {
        let graphql = async_graphql::Error::from(AppError::bad_input("room_id", "not a room"));
        let field = graphql.extensions.as_ref().and_then(|e| e.get("field"));
        assert_eq!(field, Some(&async_graphql::Value::from("roomId")));
    }
}
