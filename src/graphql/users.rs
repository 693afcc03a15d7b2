//! Looking up other people: `user(id)` and the paged `users(search)`.
use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::{
    context::ContextExt,
    types::{Page, User, parse_id},
};
use crate::{
    domain::users,
    error::{AppError, AppResult},
};

/// User queries.
#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// One user by id.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        let viewer = ctx.viewer()?;
        let id = parse_id("id", &id)?;
        Ok(Some(User::new(users::get(ctx.app(), viewer, id).await?)))
    }

    /// Users whose username or full name contains `search` (any case), or whose email is exactly
    /// `search`; in username order, `first` (1–20, default 20) per page.
    async fn users(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Page<User>> {
        let viewer = ctx.viewer()?;
        let after = after.as_deref().map(decode_cursor).transpose()?;
        let first = first.map_or(users::SEARCH_PAGE_MAX, |f| u64::try_from(f).unwrap_or(0));
        let page = users::search(
            ctx.app(),
            viewer,
            search.as_deref(),
            first,
            after.as_deref(),
        )
        .await?;
        let items = page
            .users
            .into_iter()
            .map(|u| (URL_SAFE_NO_PAD.encode(&u.username_key), User::new(u)));
        let counter = Arc::new(move |app| {
            let search = search.clone();
            Box::pin(async move { users::count(&app, search.as_deref()).await }) as _
        });
        Ok(Page::new(items, after.is_some(), page.has_next, counter))
    }
}

fn decode_cursor(cursor: &str) -> AppResult<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| AppError::bad_input("after", "after is not a valid cursor"))
}
