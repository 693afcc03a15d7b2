//! One budget per request, checked before validation: an HTTP request (a single operation or a
//! whole batch) and each WebSocket operation may expand to at most `max_query_complexity`
//! selections and hold at most one password-hashing field. The schema extension covers every
//! operation wherever it comes from; `check_batch` covers a batch as a whole before any of it runs.
use std::{any::TypeId, sync::Arc};

use async_graphql::{
    BatchRequest, Request, ServerError, ServerResult,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest},
};

use super::{
    documents::DocumentCache,
    guard::{self, Cost},
};

/// The limits of one request.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Selections after fragment expansion, summed over the request.
    pub max_nodes: u64,
    /// Operations in one batch.
    pub max_operations: usize,
    /// Fields that hash a password (`login`, `register`, `changePassword`).
    pub max_password_fields: u64,
}

impl Budget {
    /// The budget the configuration asks for.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            max_nodes: config.max_query_complexity as u64,
            max_operations: config.max_batch_operations,
            max_password_fields: 1,
        }
    }

    fn check(&self, cost: Cost) -> Result<(), String> {
        if cost.nodes > self.max_nodes {
            return Err(format!(
                "the request is too large: it selects more than {} fields once fragments are expanded",
                self.max_nodes
            ));
        }
        if cost.password_fields > self.max_password_fields {
            return Err(
                "at most one of login, register and changePassword may run per request".into(),
            );
        }
        Ok(())
    }
}

/// A refusal as a GraphQL error with its code.
fn refusal(message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", "BAD_USER_INPUT");
    error
}

/// Measures one request (parsing it once, or taking it parsed and measured from the document
/// cache; the schema reuses the parsed document).
fn measure(request: &mut Request, documents: &DocumentCache) -> ServerResult<Cost> {
    guard::check_variables(&request.variables).map_err(|r| refusal(r.message()))?;
    // A document that does not parse costs nothing here: execution reports the syntax error.
    let Some(entry) = documents.parse(request) else {
        return Ok(Cost::default());
    };
    entry.cost().map_err(|r| refusal(r.message()))
}

/// Marks a request `check_batch` already measured, so the extension does not walk it again.
struct Measured;

/// Checks a whole HTTP request before any of it runs.
pub fn check_batch(
    budget: &Budget,
    documents: &DocumentCache,
    batch: &mut BatchRequest,
) -> ServerResult<()> {
    let requests: Vec<&mut Request> = match batch {
        BatchRequest::Single(request) => vec![request],
        BatchRequest::Batch(requests) => {
            if requests.len() > budget.max_operations {
                return Err(refusal(format!(
                    "a batch may hold at most {} operations",
                    budget.max_operations
                )));
            }
            requests.iter_mut().collect()
        }
    };
    let mut total = Cost::default();
    for request in requests {
        let cost = measure(request, documents)?;
        request.data.insert(Measured);
        total.nodes = total.nodes.saturating_add(cost.nodes);
        total.password_fields = total.password_fields.saturating_add(cost.password_fields);
    }
    budget.check(total).map_err(refusal)
}

/// The schema extension: every operation (HTTP or WebSocket) is measured before validation,
/// unless `check_batch` measured it already as part of its HTTP request.
pub struct RequestBudget(pub Budget, pub Arc<DocumentCache>);

impl ExtensionFactory for RequestBudget {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(BudgetExtension(self.0, self.1.clone()))
    }
}

struct BudgetExtension(Budget, Arc<DocumentCache>);

#[async_graphql::async_trait::async_trait]
impl Extension for BudgetExtension {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        if !request.data.contains_key(&TypeId::of::<Measured>()) {
            let cost = measure(&mut request, &self.1)?;
            self.0.check(cost).map_err(refusal)?;
        }
        next.run(ctx, request).await
    }
}
