//! Relay connections for every unbounded list: `edges { cursor node }`, `nodes`, `pageInfo` and a
//! `totalCount` that costs a query only when a client asks for it. Named `{Node}Connection`.
use std::{borrow::Cow, sync::Arc};

use async_graphql::{
    Context, Object, OutputType, TypeName, connection::PageInfo, futures_util::future::BoxFuture,
};

use crate::{error::AppResult, graphql::context::ContextExt, state::AppState};

/// Counts the whole list on demand.
pub type Counter = Arc<dyn Fn(AppState) -> BoxFuture<'static, AppResult<u64>> + Send + Sync>;

/// One page of a list.
pub struct Page<T> {
    edges: Vec<Edge<T>>,
    has_previous_page: bool,
    has_next_page: bool,
    has_more: bool,
    counter: Counter,
}

impl<T> Page<T> {
    /// A page from `(cursor, node)` pairs in list order.
    pub fn new(
        items: impl IntoIterator<Item = (String, T)>,
        has_previous_page: bool,
        has_next_page: bool,
        counter: Counter,
    ) -> Self {
        let edges = items
            .into_iter()
            .map(|(cursor, node)| Edge { cursor, node })
            .collect();
        Self {
            edges,
            has_previous_page,
            has_next_page,
            has_more: has_next_page,
            counter,
        }
    }

    /// Overrides `hasMore` for lists paged backwards (older items exist).
    pub fn with_has_more(mut self, has_more: bool) -> Self {
        self.has_more = has_more;
        self
    }
}

/// A page of a list (Relay connection): the items with their cursors, the items alone, where the
/// page sits in the list, and how long the whole list is.
#[Object(name_type)]
impl<T: OutputType> Page<T> {
    /// The items of this page, each with the cursor to page after (or before) it.
    async fn edges(&self) -> &[Edge<T>] {
        &self.edges
    }

    /// The items of this page.
    async fn nodes(&self) -> Vec<&T> {
        self.edges.iter().map(|e| &e.node).collect()
    }

    /// Whether more items exist before and after this page, and the cursors at its ends.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_previous_page: self.has_previous_page,
            has_next_page: self.has_next_page,
            start_cursor: self.edges.first().map(|e| e.cursor.clone()),
            end_cursor: self.edges.last().map(|e| e.cursor.clone()),
        }
    }

    /// Whether more items exist in the direction being paged: after this page when paging
    /// forward, before it (older) when paging backward or by offset.
    async fn has_more(&self) -> bool {
        self.has_more
    }

    /// How many items the whole list holds (counted only when asked for).
    async fn total_count(&self, ctx: &Context<'_>) -> async_graphql::Result<u64> {
        Ok((self.counter)(ctx.app().clone()).await?)
    }
}

impl<T: OutputType> TypeName for Page<T> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Connection", T::type_name()).into()
    }
}

/// An item of a page with its cursor.
pub struct Edge<T> {
    cursor: String,
    node: T,
}

/// An item in a list together with its position (cursor).
#[Object(name_type)]
impl<T: OutputType> Edge<T> {
    /// Opaque position of this item; pass it as `after` or `before` to page from here.
    async fn cursor(&self) -> &str {
        &self.cursor
    }

    /// The item.
    async fn node(&self) -> &T {
        &self.node
    }
}

impl<T: OutputType> TypeName for Edge<T> {
    fn type_name() -> Cow<'static, str> {
        format!("{}Edge", T::type_name()).into()
    }
}
