//! Looking people up: by id, and a paged search by username, full name or exact email.
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use uuid::Uuid;

use super::{Viewer, validate};
use crate::{
    app::AppState,
    entity::user,
    error::{AppError, AppResult},
};

/// Largest page of `users`.
pub const SEARCH_PAGE_MAX: u64 = 20;
/// Longest accepted search text.
const SEARCH_TEXT_MAX: usize = 100;

/// A page of users, in username order.
pub struct UserPage {
    pub users: Vec<user::Model>,
    pub has_next: bool,
}

/// One user by id; any signed-in user may look another up.
pub async fn get(app: &AppState, _viewer: &Viewer, id: Uuid) -> AppResult<user::Model> {
    user::Entity::find_by_id(id)
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound("user not found".into()))
}

/// Users whose username or full name contains `search` (case-insensitive), or whose email is
/// exactly `search`; emails are never substring-matched so they cannot be enumerated.
/// `after` is the username key of the last user of the previous page.
pub async fn search(
    app: &AppState,
    _viewer: &Viewer,
    search: Option<&str>,
    first: u64,
    after: Option<&str>,
) -> AppResult<UserPage> {
    if first == 0 || first > SEARCH_PAGE_MAX {
        return Err(AppError::bad_input(
            "first",
            format!("first must be between 1 and {SEARCH_PAGE_MAX}"),
        ));
    }
    let mut query = user::Entity::find().filter(search_condition(search)?);
    if let Some(after) = after {
        query = query.filter(user::Column::UsernameKey.gt(after));
    }
    let mut users = query
        .order_by_asc(user::Column::UsernameKey)
        .limit(first + 1)
        .all(&app.db)
        .await?;
    let has_next = users.len() as u64 > first;
    users.truncate(first as usize);
    Ok(UserPage { users, has_next })
}

/// How many users `search` matches in all.
pub async fn count(app: &AppState, search: Option<&str>) -> AppResult<u64> {
    Ok(user::Entity::find()
        .filter(search_condition(search)?)
        .count(&app.db)
        .await?)
}

fn search_condition(search: Option<&str>) -> AppResult<Condition> {
    let Some(text) = search.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Condition::all());
    };
    if text.chars().count() > SEARCH_TEXT_MAX {
        return Err(AppError::bad_input(
            "search",
            format!("search must be at most {SEARCH_TEXT_MAX} characters long"),
        ));
    }
    let pattern = validate::like_pattern_contains(&text.to_lowercase());
    let like = || LikeExpr::new(pattern.clone()).escape('\\');
    Ok(Condition::any()
        .add(Expr::col(user::Column::UsernameKey).like(like()))
        .add(Expr::expr(Func::lower(Expr::col(user::Column::FullName))).like(like()))
        .add(user::Column::Email.eq(text.to_lowercase())))
}
