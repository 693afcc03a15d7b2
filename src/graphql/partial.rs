//! Partial results as the GraphQL spec says. async-graphql 7 leaves a field whose resolver failed
//! out of `data`; the spec wants it `null` beside its error, and a failed non-null field makes its
//! nearest nullable ancestor `null` (or `data` itself). This extension keeps the request's
//! document and, when a response (a query's, a mutation's or one subscription event's) carries
//! errors with paths, writes those nulls using the schema's types. It also marks a request as
//! executed, so the HTTP layer tells request errors (never executed: no `data`) from field errors.
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use async_graphql::{
    PathSegment, Request, Response, ServerResult, Value,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
        NextSubscribe,
    },
    futures_util::{StreamExt, stream::BoxStream},
    parser::types::{
        DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
    },
    registry::{MetaType, Registry},
};

/// Set in a request's data by the HTTP layer; true once the operation started executing.
#[derive(Clone, Default)]
pub struct Executed(Arc<AtomicBool>);

impl Executed {
    /// Whether execution began (false: the request failed to parse, validate or coerce).
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The extension factory (one `Partial` per request or subscription).
pub struct PartialResults;

impl ExtensionFactory for PartialResults {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Partial::default())
    }
}

/// What a request's responses are completed against: its document and operation name. Only
/// the text is kept; it is parsed again, once, for the first response that has errors with a
/// path (rare), so a request without them pays no copy of its syntax tree.
#[derive(Default)]
struct Kept {
    query: Option<Arc<str>>,
    document: Option<Arc<ExecutableDocument>>,
    operation: Option<String>,
}

impl Kept {
    /// The document, parsed on first use (None: nothing kept, or it does not parse).
    fn document(&mut self) -> Option<Arc<ExecutableDocument>> {
        if self.document.is_none() {
            let query = self.query.as_deref()?;
            self.document = async_graphql::parser::parse_query(query).ok().map(Arc::new);
        }
        self.document.clone()
    }
}

#[derive(Default)]
struct Partial {
    /// Shared with a subscription's stream, which outlives the hooks.
    kept: Arc<Mutex<Kept>>,
}

/// Completes one response (nothing to do without errors that have a path).
fn complete(kept: &Mutex<Kept>, registry: &Registry, response: &mut Response) {
    if response.errors.iter().all(|e| e.path.is_empty()) {
        return;
    }
    let (document, operation) = match kept.lock() {
        Ok(mut kept) => (kept.document(), kept.operation.clone()),
        Err(_) => return,
    };
    let Some(document) = document else {
        return;
    };
    let Some((kind, selection)) = find_operation(&document, operation.as_deref()) else {
        return;
    };
    let root = match kind {
        OperationType::Query => Some(registry.query_type.as_str()),
        OperationType::Mutation => registry.mutation_type.as_deref(),
        OperationType::Subscription => registry.subscription_type.as_deref(),
    };
    let Some(root) = root else {
        return;
    };
    let walk = Walk {
        registry,
        document: &document,
    };
    // Where each error puts its null (None: `data` itself), the shallowest first, so a null
    // that covers another error's place is written once.
    let mut targets: Vec<Option<Vec<PathSegment>>> = response
        .errors
        .iter()
        .filter(|e| !e.path.is_empty())
        .filter_map(|e| walk.target(root, selection, &e.path))
        .collect();
    if targets.iter().any(Option::is_none) {
        response.data = Value::Null;
        return;
    }
    targets.sort_by_key(|t| t.as_ref().map_or(0, Vec::len));
    let mut written: Vec<Vec<PathSegment>> = Vec::new();
    for target in targets.into_iter().flatten() {
        if written.iter().any(|w| target.starts_with(w)) {
            continue;
        }
        set_null(&mut response.data, &target);
        written.push(target);
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for Partial {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if let Ok(mut kept) = self.kept.lock() {
            kept.operation = request.operation_name.clone();
            kept.query = Some(Arc::from(request.query.as_str()));
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        if let Some(executed) = ctx.data_opt::<Executed>() {
            executed.0.store(true, Ordering::Relaxed);
        }
        let mut response = next.run(ctx, operation_name).await;
        complete(&self.kept, &ctx.schema_env.registry, &mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let kept = self.kept.clone();
        let schema = ctx.schema_env.clone();
        next.run(ctx, stream)
            .map(move |mut response| {
                complete(&kept, &schema.registry, &mut response);
                response
            })
            .boxed()
    }
}

/// The shortest way through the types from the root to an error's path.
struct Walk<'a> {
    registry: &'a Registry,
    document: &'a ExecutableDocument,
}

impl Walk<'_> {
    /// Where one error's null goes: the deepest place on its path that may be null (`Some(None)`:
    /// none may, `data` itself is null); None when the path does not fit the document.
    fn target(
        &self,
        root: &str,
        selection: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<Option<Vec<PathSegment>>> {
        let nullable = self.nullability(root, selection, path)?;
        Some(
            nullable
                .iter()
                .rposition(|n| *n)
                .map(|at| path[..=at].to_vec()),
        )
    }

    /// For each segment of `path`, whether the value there may be null (None: the path does
    /// not fit the document, e.g. an introspection field; nothing is changed then).
    fn nullability(
        &self,
        root: &str,
        selection: &SelectionSet,
        path: &[PathSegment],
    ) -> Option<Vec<bool>> {
        let mut out = Vec::with_capacity(path.len());
        let mut parent: &MetaType = self.registry.types.get(root)?;
        let mut sets: Vec<&SelectionSet> = vec![selection];
        let mut current = String::new();
        for segment in path {
            match segment {
                PathSegment::Field(key) => {
                    let mut fields = Vec::new();
                    for set in &sets {
                        self.collect(set, key, &mut fields);
                    }
                    let name = fields.first()?.name.node.as_str();
                    let ty = self.field_type(parent, name)?;
                    out.push(!ty.ends_with('!'));
                    parent = self.registry.types.get(named(ty))?;
                    current = ty.to_owned();
                    sets = fields.iter().map(|f| &f.selection_set.node).collect();
                }
                PathSegment::Index(_) => {
                    let element = element_type(&current)?;
                    out.push(!element.ends_with('!'));
                    current = element.to_owned();
                }
            }
        }
        Some(out)
    }

    /// The fields of `set` (fragments expanded) answering to response key `key`.
    fn collect<'s>(
        &'s self,
        set: &'s SelectionSet,
        key: &str,
        out: &mut Vec<&'s async_graphql::parser::types::Field>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    if field.node.response_key().node.as_str() == key {
                        out.push(&field.node);
                    }
                }
                Selection::InlineFragment(fragment) => {
                    self.collect(&fragment.node.selection_set.node, key, out)
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.collect(&fragment.node.selection_set.node, key, out)
                    }
                }
            }
        }
    }

    /// The type of field `name` on `parent`; for a union or an interface, as declared on the
    /// first possible type that has it (validation makes them agree on nullability).
    fn field_type<'r>(&'r self, parent: &'r MetaType, name: &str) -> Option<&'r str> {
        if let Some(field) = parent.field_by_name(name) {
            return Some(field.ty.as_str());
        }
        parent.possible_types()?.iter().find_map(|ty| {
            self.registry
                .types
                .get(ty)?
                .field_by_name(name)
                .map(|f| f.ty.as_str())
        })
    }
}

/// The operation a response belongs to.
fn find_operation<'d>(
    document: &'d ExecutableDocument,
    name: Option<&str>,
) -> Option<(OperationType, &'d SelectionSet)> {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    Some((operation.node.ty, &operation.node.selection_set.node))
}

/// `[Message!]!` → `Message`.
fn named(ty: &str) -> &str {
    ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
}

/// `[Message!]!` → `Message!`.
fn element_type(ty: &str) -> Option<&str> {
    ty.trim_end_matches('!')
        .strip_prefix('[')?
        .strip_suffix(']')
}

/// Sets the value at `path` to null, when its parent is there (an ancestor already null or
/// missing is another error's business).
fn set_null(data: &mut Value, path: &[PathSegment]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = data;
    for segment in parents {
        at = match (segment, at) {
            (PathSegment::Field(key), Value::Object(map)) => match map.get_mut(key.as_str()) {
                Some(value) => value,
                None => return,
            },
            (PathSegment::Index(i), Value::List(list)) => match list.get_mut(*i) {
                Some(value) => value,
                None => return,
            },
            _ => return,
        };
    }
    match (last, at) {
        (PathSegment::Field(key), Value::Object(map)) => {
            map.insert(async_graphql::Name::new(key), Value::Null);
        }
        (PathSegment::Index(i), Value::List(list)) => {
            if let Some(value) = list.get_mut(*i) {
                *value = Value::Null;
            }
        }
        // The parent object itself came back empty (every field failed): async-graphql made
        // it null; an object with the failed field as null is what the spec wants.
        (PathSegment::Field(key), value @ Value::Null) => {
            let mut map = async_graphql::indexmap::IndexMap::new();
            map.insert(async_graphql::Name::new(key), Value::Null);
            *value = Value::Object(map);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, Object, Schema, Subscription, futures_util::Stream};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn ok(&self) -> i32 {
            1
        }
        async fn bad(&self) -> async_graphql::Result<Option<i32>> {
            Err("no".into())
        }
        async fn inner(&self) -> Option<Inner> {
            Some(Inner)
        }
        async fn list(&self) -> Vec<Inner> {
            vec![Inner, Inner]
        }
    }

    struct Inner;

    #[Object]
    impl Inner {
        async fn fine(&self) -> i32 {
            2
        }
        async fn strict(&self) -> async_graphql::Result<i32> {
            Err("no".into())
        }
        async fn loose(&self) -> async_graphql::Result<Option<i32>> {
            Err("no".into())
        }
    }

    struct Subscriptions;

    #[Subscription]
    impl Subscriptions {
        async fn events(&self) -> impl Stream<Item = Inner> {
            async_graphql::futures_util::stream::iter([Inner])
        }
    }

    fn schema() -> Schema<Query, EmptyMutation, Subscriptions> {
        Schema::build(Query, EmptyMutation, Subscriptions)
            .extension(PartialResults)
            .finish()
    }

    async fn run(query: &str) -> serde_json::Value {
        let response = schema().execute(query).await;
        serde_json::to_value(&response.data).unwrap()
    }

    #[tokio::test]
    async fn nullable_failures_are_null_and_non_null_ones_propagate() {
        assert_eq!(
            run("{ ok bad inner { fine loose } }").await,
            serde_json::json!({ "ok": 1, "bad": null, "inner": { "fine": 2, "loose": null } })
        );
        // `strict` is non-null: its parent, nullable, is null instead.
        assert_eq!(
            run("{ ok inner { fine strict } }").await,
            serde_json::json!({ "ok": 1, "inner": null })
        );
        // In a non-null list of non-null items, up to the nearest nullable: `data`.
        assert_eq!(run("{ ok list { strict } }").await, serde_json::Value::Null);
        // An object whose every field failed is an object of nulls, not null.
        assert_eq!(
            run("{ inner { loose } }").await,
            serde_json::json!({ "inner": { "loose": null } })
        );
        assert_eq!(
            run("{ x: inner { ... on Inner { y: loose } } }").await,
            serde_json::json!({ "x": { "y": null } })
        );
    }

    #[tokio::test]
    async fn subscription_events_are_completed_too() {
        let events: Vec<_> = schema()
            .execute_stream("subscription { events { fine loose } }")
            .collect()
            .await;
        assert_eq!(events.len(), 1);
        assert_eq!(
            serde_json::to_value(&events[0].data).unwrap(),
            serde_json::json!({ "events": { "fine": 2, "loose": null } })
        );
    }
}
