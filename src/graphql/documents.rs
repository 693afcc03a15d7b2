//! Parsed and validated documents, kept so that a client repeating an operation pays neither
//! parsing nor validation again (one cache per `AppState`, so one per process).
//!
//! What is kept, and why it is exact:
//! - **Parsing** depends on the document's text alone: the parsed document (and its cost as
//!   `guard::measure` counts it, refusal included) is keyed by the text. A hit hands the schema a
//!   copy through `Request::set_parsed_query`; async-graphql's own checks after parsing (recursion
//!   depth, directive count) still run on it, as on a miss.
//! - **Validation** (`check_rules` in async-graphql 7.2) depends on the schema (fixed for a
//!   process), the document, the operation name (`ArgumentsOfCorrectType` skips the operations
//!   not selected) and the values of the request's variables: `ArgumentsOfCorrectType` checks a
//!   variable's value wherever an argument uses it, and a field's complexity function, if one
//!   existed, would see them too. The complexity and depth limits themselves are the schema's. So
//!   a validation result is kept under (text, operation name, variables), the variables as their
//!   JSON text, and left out of the key only when the text holds no `$` at all (then no argument
//!   can reference a variable and their values cannot matter). Errors are kept too: the same
//!   inputs give the same errors. A request whose variables change each time (a `sendMessage`
//!   with new content) still saves the parsing but always validates.
//!
//! Documents that fail to parse are not kept (execution reports the syntax error as it always
//! did). Bounds: [`ENTRIES`] documents and [`BYTES`] of their text (least recently used out
//! first), documents over [`LARGEST`] bytes never kept, and per document [`VALIDATIONS`] results
//! whose variables' JSON is at most [`VARIABLES_BYTES`].
use std::{
    any::TypeId,
    num::NonZeroUsize,
    sync::{Arc, Mutex, MutexGuard},
};

use async_graphql::{
    Request, ServerError, ServerResult, ValidationResult,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextValidation,
    },
    parser::types::ExecutableDocument,
};
use lru::LruCache;
use prometheus_client::metrics::counter::Counter;

use super::guard::{self, Cost, Refusal};
use crate::metrics::Metrics;

/// Documents kept, at most.
pub const ENTRIES: usize = 1024;
/// Bytes of document text kept, at most (the parsed form is a small multiple of its text).
pub const BYTES: usize = 4 * 1024 * 1024;
/// A document longer than this is parsed every time.
pub const LARGEST: usize = 64 * 1024;
/// Validation results kept per document (operation names × variable values), at most.
pub const VALIDATIONS: usize = 8;
/// Variables whose JSON is longer than this are validated every time.
pub const VARIABLES_BYTES: usize = 1024;

type Validated = Result<ValidationResult, Vec<ServerError>>;

/// What a validation result depends on besides the document (and the schema).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct ValidationKey {
    operation: Option<String>,
    /// The variables as JSON; empty when the document cannot reference any.
    variables: String,
}

/// One document's text, parsed form, cost and validation results.
pub struct Entry {
    text: Arc<str>,
    document: ExecutableDocument,
    cost: Result<Cost, Refusal>,
    /// Whether the text has a `$`, so an argument may reference a variable.
    may_use_variables: bool,
    validations: Mutex<LruCache<ValidationKey, Validated>>,
}

impl Entry {
    fn new(text: &str, document: ExecutableDocument) -> Self {
        Self {
            text: Arc::from(text),
            cost: guard::measure(&document),
            document,
            may_use_variables: text.contains('$'),
            validations: Mutex::new(LruCache::new(
                NonZeroUsize::new(VALIDATIONS).expect("non-zero"),
            )),
        }
    }

    /// The document's cost as `guard::measure` counts it (measured once, when parsed).
    pub fn cost(&self) -> Result<Cost, Refusal> {
        self.cost.clone()
    }

    fn validations(&self) -> MutexGuard<'_, LruCache<ValidationKey, Validated>> {
        self.validations.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Under which key a request's validation is kept (None: not kept).
    fn key(&self, request: &Request) -> Option<ValidationKey> {
        let variables = if self.may_use_variables {
            let json = serde_json::to_string(&request.variables).ok()?;
            if json.len() > VARIABLES_BYTES {
                return None;
            }
            json
        } else {
            String::new()
        };
        Some(ValidationKey {
            operation: request.operation_name.clone(),
            variables,
        })
    }
}

/// Set in a request's data with the entry its parsed document came from, for the validation
/// extension.
struct Known(Arc<Entry>);

struct Kept {
    entries: LruCache<Arc<str>, Arc<Entry>>,
    bytes: usize,
}

/// How often each stage was served from the cache.
struct Counters {
    parse_hit: Counter,
    parse_miss: Counter,
    validation_hit: Counter,
    validation_miss: Counter,
}

/// The process's parsed and validated documents.
pub struct DocumentCache {
    kept: Mutex<Kept>,
    counters: Counters,
}

impl DocumentCache {
    /// An empty cache counting into `metrics` (`goftgu_documents_cached_total`).
    pub fn new(metrics: &Metrics) -> Self {
        let counter = |stage: &str, outcome: &str| {
            metrics
                .documents_cached
                .get_or_create(&vec![
                    ("stage", stage.to_string()),
                    ("outcome", outcome.to_string()),
                ])
                .clone()
        };
        Self {
            kept: Mutex::new(Kept {
                entries: LruCache::new(NonZeroUsize::new(ENTRIES).expect("non-zero")),
                bytes: 0,
            }),
            counters: Counters {
                parse_hit: counter("parse", "hit"),
                parse_miss: counter("parse", "miss"),
                validation_hit: counter("validation", "hit"),
                validation_miss: counter("validation", "miss"),
            },
        }
    }

    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `request` its parsed document, from the cache or by parsing (then kept), and marks
    /// the request for the validation extension. None when the document does not parse (the
    /// request is left as it was: execution reports the syntax error).
    pub fn parse(&self, request: &mut Request) -> Option<Arc<Entry>> {
        let found = self.lock().entries.get(request.query.as_str()).cloned();
        let entry = match found {
            Some(entry) => {
                self.counters.parse_hit.inc();
                request.set_parsed_query(entry.document.clone());
                entry
            }
            None => {
                let document = request.parsed_query().ok()?.clone();
                self.counters.parse_miss.inc();
                let entry = Arc::new(Entry::new(&request.query, document));
                self.keep(entry.clone());
                entry
            }
        };
        request.data.insert(Known(entry.clone()));
        Some(entry)
    }

    fn keep(&self, entry: Arc<Entry>) {
        let size = entry.text.len();
        if size > LARGEST {
            return;
        }
        let mut kept = self.lock();
        // `push` hands back what it replaced or evicted.
        if let Some((old, _)) = kept.entries.push(entry.text.clone(), entry) {
            kept.bytes -= old.len();
        }
        kept.bytes += size;
        while kept.bytes > BYTES {
            match kept.entries.pop_lru() {
                Some((evicted, _)) => kept.bytes -= evicted.len(),
                None => break,
            }
        }
    }

    /// Documents and bytes of text kept now.
    pub fn len(&self) -> (usize, usize) {
        let kept = self.lock();
        (kept.entries.len(), kept.bytes)
    }
}

/// The schema extension that answers validation from the cache. Installed last, so that every
/// other extension sees a cached result exactly as it would see a computed one.
pub struct CachedValidation(pub Arc<DocumentCache>);

impl ExtensionFactory for CachedValidation {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Validation {
            cache: self.0.clone(),
            pending: Mutex::new(None),
        })
    }
}

/// One request's validation: where its result is (or will be) kept.
struct Validation {
    cache: Arc<DocumentCache>,
    pending: Mutex<Option<(Arc<Entry>, ValidationKey)>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for Validation {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let known = request
            .data
            .get(&TypeId::of::<Known>())
            .and_then(|data| data.downcast_ref::<Known>())
            // The document the request runs is the one the entry holds.
            .filter(|known| *known.0.text == *request.query)
            .and_then(|known| Some((known.0.clone(), known.0.key(&request)?)));
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = known;
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some((entry, key)) = pending else {
            return next.run(ctx).await;
        };
        let found = entry.validations().get(&key).cloned();
        if let Some(result) = found {
            self.cache.counters.validation_hit.inc();
            return result;
        }
        self.cache.counters.validation_miss.inc();
        let result = next.run(ctx).await;
        entry.validations().put(key, result.clone());
        result
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, Variables};

    use super::*;

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            n * 2
        }
        async fn me(&self) -> Me {
            Me
        }
    }

    struct Me;

    #[Object]
    impl Me {
        async fn id(&self) -> i32 {
            7
        }
        async fn me(&self) -> Me {
            Me
        }
    }

    type TestSchema = Schema<Query, EmptyMutation, EmptySubscription>;

    fn schema(cache: Option<Arc<DocumentCache>>) -> TestSchema {
        let builder = Schema::build(Query, EmptyMutation, EmptySubscription)
            .limit_depth(3)
            .limit_complexity(20);
        match cache {
            Some(cache) => builder.extension(CachedValidation(cache)).finish(),
            None => builder.finish(),
        }
    }

    fn request(query: &str, variables: serde_json::Value) -> Request {
        Request::new(query).variables(Variables::from_json(variables))
    }

    /// Runs `query` as the server does (parsed through the cache first) and as async-graphql
    /// alone would; the two answers must be the same JSON.
    async fn run(cache: &Arc<DocumentCache>, query: &str, vars: serde_json::Value) -> String {
        let mut cached = request(query, vars.clone());
        cache.parse(&mut cached);
        let answer = serde_json::to_string(&schema(Some(cache.clone())).execute(cached).await)
            .expect("serializes");
        let reference = serde_json::to_string(&schema(None).execute(request(query, vars)).await)
            .expect("serializes");
        assert_eq!(answer, reference, "{query}");
        answer
    }

    fn counts(cache: &DocumentCache) -> [u64; 4] {
        let c = &cache.counters;
        [
            c.parse_hit.get(),
            c.parse_miss.get(),
            c.validation_hit.get(),
            c.validation_miss.get(),
        ]
    }

    fn cache() -> Arc<DocumentCache> {
        Arc::new(DocumentCache::new(&Metrics::default()))
    }

    #[tokio::test]
    async fn a_repeated_document_is_parsed_and_validated_once() {
        let cache = cache();
        let first = run(&cache, "{ me { id } }", serde_json::json!({})).await;
        assert_eq!(counts(&cache), [0, 1, 0, 1]);
        let second = run(&cache, "{ me { id } }", serde_json::json!({})).await;
        assert_eq!(first, second);
        assert_eq!(first, r#"{"data":{"me":{"id":7}}}"#);
        assert_eq!(counts(&cache), [1, 1, 1, 1]);
        // Variables the document cannot use do not split the key.
        run(&cache, "{ me { id } }", serde_json::json!({"unused": 1})).await;
        assert_eq!(counts(&cache), [2, 1, 2, 1]);
        // The measured cost comes with the entry.
        let mut again = request("{ me { id } }", serde_json::json!({}));
        let entry = cache.parse(&mut again).expect("parses");
        assert_eq!(entry.cost().unwrap().nodes, 2);
    }

    #[tokio::test]
    async fn validation_errors_are_the_same_on_a_hit_and_a_miss() {
        let cache = cache();
        for query in [
            "{ me { nope } }",                          // unknown field
            "{ me { me { me { me { id } } } } }",       // depth limit
            "query A { me { id } } query B { double }", // missing argument, two operations
        ] {
            let miss = run(&cache, query, serde_json::json!({})).await;
            let hit = run(&cache, query, serde_json::json!({})).await;
            assert!(miss.contains("errors"), "{miss}");
            assert_eq!(miss, hit);
        }
        assert_eq!(counts(&cache), [3, 3, 3, 3]);
        // Two operations, chosen by name (or not: an error), each answer the same on a hit.
        let both = "query A { me { id } } query B { double(n: 1) }";
        for name in [
            Some("A"),
            Some("B"),
            Some("C"),
            None,
            Some("A"),
            Some("B"),
            None,
        ] {
            let mut named = request(both, serde_json::json!({}));
            let mut reference = request(both, serde_json::json!({}));
            if let Some(name) = name {
                named = named.operation_name(name);
                reference = reference.operation_name(name);
            }
            cache.parse(&mut named);
            let answer = schema(Some(cache.clone())).execute(named).await;
            let expected = schema(None).execute(reference).await;
            assert_eq!(
                serde_json::to_string(&answer).unwrap(),
                serde_json::to_string(&expected).unwrap()
            );
        }
        assert_eq!(counts(&cache), [3 + 6, 3 + 1, 3 + 3, 3 + 4]);
    }

    #[tokio::test]
    async fn variable_values_are_part_of_the_key() {
        let cache = cache();
        let query = "query D($n: Int!) { double(n: $n) }";
        let ok = run(&cache, query, serde_json::json!({"n": 2})).await;
        assert_eq!(ok, r#"{"data":{"double":4}}"#);
        // Same document, a value of the wrong type: validation says so, not the cached success.
        let bad = run(&cache, query, serde_json::json!({"n": "two"})).await;
        assert!(bad.contains("Invalid value for argument"), "{bad}");
        assert_eq!(
            run(&cache, query, serde_json::json!({"n": "two"})).await,
            bad
        );
        assert_eq!(run(&cache, query, serde_json::json!({"n": 2})).await, ok);
        assert_eq!(counts(&cache), [3, 1, 2, 2]);
    }

    #[tokio::test]
    async fn a_document_that_does_not_parse_is_not_kept() {
        let cache = cache();
        let first = run(&cache, "{ me { id ", serde_json::json!({})).await;
        assert_eq!(
            run(&cache, "{ me { id ", serde_json::json!({})).await,
            first
        );
        assert!(first.contains("errors"));
        assert_eq!(counts(&cache), [0, 0, 0, 0]);
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn entries_and_bytes_are_bounded() {
        let cache = cache();
        for i in 0..ENTRIES + 10 {
            cache.parse(&mut Request::new(format!("{{ a{i}: me {{ id }} }}")));
        }
        let (entries, bytes) = cache.len();
        assert_eq!(entries, ENTRIES);
        // The oldest went first.
        cache.parse(&mut Request::new("{ a0: me { id } }"));
        assert_eq!(cache.counters.parse_miss.get(), ENTRIES as u64 + 11);
        assert!(bytes < BYTES);

        // Large documents: the byte bound holds before the entry bound.
        let cache = super::tests::cache();
        let padding = " ".repeat(LARGEST - 100);
        for i in 0..200 {
            cache.parse(&mut Request::new(format!(
                "{{ a{i}: me {{ id }} {padding}}}"
            )));
        }
        let (entries, bytes) = cache.len();
        assert!(bytes <= BYTES, "{bytes}");
        assert!((BYTES / LARGEST..200).contains(&entries), "{entries}");

        // Too large to keep at all.
        let cache = super::tests::cache();
        let huge = format!("{{ me {{ id }} {}}}", " ".repeat(LARGEST));
        assert!(cache.parse(&mut Request::new(huge)).is_some());
        assert_eq!(cache.len(), (0, 0));
    }

    #[test]
    fn validations_per_document_are_bounded() {
        let entry = Entry::new(
            "{ me { id } }",
            async_graphql::parser::parse_query("{ me { id } }").unwrap(),
        );
        for i in 0..VALIDATIONS + 5 {
            entry.validations().put(
                ValidationKey {
                    operation: Some(format!("op{i}")),
                    variables: String::new(),
                },
                Err(vec![]),
            );
        }
        assert_eq!(entry.validations().len(), VALIDATIONS);
        // Variables too long to be a key are validated every time.
        let long = request(
            "query Q($s: String) { me { id } }",
            serde_json::json!({"s": "x".repeat(VARIABLES_BYTES)}),
        );
        let entry = Entry::new(
            &long.query,
            async_graphql::parser::parse_query(&long.query).unwrap(),
        );
        assert!(entry.key(&long).is_none());
    }

    /// Stops a request after validation: what is left is parsing and validation.
    struct Stop;

    impl ExtensionFactory for Stop {
        fn create(&self) -> Arc<dyn Extension> {
            Arc::new(Stop)
        }
    }

    #[async_graphql::async_trait::async_trait]
    impl Extension for Stop {
        async fn execute(
            &self,
            _ctx: &ExtensionContext<'_>,
            _operation_name: Option<&str>,
            _next: async_graphql::extensions::NextExecute<'_>,
        ) -> async_graphql::Response {
            async_graphql::Response::new(async_graphql::Value::Null)
        }
    }

    /// A micro benchmark: the served schema's parsing and validation of three documents the
    /// harness sends, done every time and taken from the cache.
    /// `cargo test --release --lib documents::tests::parse_and_validation_cost -- --ignored --nocapture`
    #[tokio::test]
    #[ignore = "a measurement, not a check"]
    async fn parse_and_validation_cost() {
        use std::time::Instant;
        // The defaults of GOFTGU_MAX_QUERY_DEPTH and GOFTGU_MAX_QUERY_COMPLEXITY.
        let served = |cache: Option<Arc<DocumentCache>>| {
            let builder = crate::graphql::builder()
                .limit_depth(15)
                .limit_complexity(1000)
                .extension(Stop);
            match cache {
                Some(cache) => builder.extension(CachedValidation(cache)).finish(),
                None => builder.finish(),
            }
        };
        let documents = [
            ("{ me { id } }", serde_json::json!({})),
            (
                "query { chats(first: 50) { totalCount nodes { id title memberCount unreadCount lastActivityAt lastMessage { id content createdAt sender { id username } } members(first: 5) { nodes { role user { id username } } } } pageInfo { hasNextPage endCursor } } }",
                serde_json::json!({}),
            ),
            (
                "query($chat: ID!, $after: String) { messages(chatId: $chat, first: 50, after: $after) { nodes { id kind content createdAt sender { id username } } pageInfo { hasNextPage endCursor } } }",
                serde_json::json!({"chat": uuid::Uuid::nil(), "after": "AAAA"}),
            ),
        ];
        const N: u32 = 2000;
        for (query, vars) in documents {
            let plain = served(None);
            let start = Instant::now();
            for _ in 0..N {
                let response = plain.execute(request(query, vars.clone())).await;
                assert!(response.errors.is_empty(), "{:?}", response.errors);
            }
            let every_time = start.elapsed() / N;
            let cache = cache();
            let cached = served(Some(cache.clone()));
            let start = Instant::now();
            for _ in 0..N {
                let mut request = request(query, vars.clone());
                cache.parse(&mut request);
                let response = cached.execute(request).await;
                assert!(response.errors.is_empty(), "{:?}", response.errors);
            }
            let from_cache = start.elapsed() / N;
            println!(
                "{:>4} bytes: parse + validate {every_time:?}, from the cache {from_cache:?} ({query:.40})",
                query.len()
            );
        }
    }
}
