//! Looking people up: by id, and a paged search by username, full name or exact email.
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use uuid::Uuid;

use super::{Viewer, paging::fetch_page, validate};
use crate::{
    entity::user,
    error::{AppError, AppResult},
    state::AppState,
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
    validate::page_size("first", first as i64, SEARCH_PAGE_MAX)?;
    let mut query = user::Entity::find().filter(search_condition(search)?);
    if let Some(after) = after {
        query = query.filter(user::Column::UsernameKey.gt(after));
    }
    let query = query.order_by_asc(user::Column::UsernameKey);
    let (users, has_next) = fetch_page(query, first, &app.db).await?;
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

/// Most identifiers accepted in one call.
pub const IDENTIFIERS_MAX: usize = 100;

/// Resolves usernames, emails or ids to users (deduplicated, in input order). Unknown ones are
/// reported in one `BAD_USER_INPUT` naming `field`, never silently dropped.
pub async fn resolve_identifiers(
    app: &AppState,
    field: &str,
    identifiers: &[String],
) -> AppResult<Vec<user::Model>> {
    if identifiers.len() > IDENTIFIERS_MAX {
        return Err(AppError::bad_input(
            field,
            format!("at most {IDENTIFIERS_MAX} users at a time"),
        ));
    }
    let wanted: Vec<&str> = identifiers
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut any = Condition::any();
    for identifier in &wanted {
        any = any.add(identifier_condition(identifier));
    }
    let found = user::Entity::find().filter(any).all(&app.db).await?;
    let mut users: Vec<user::Model> = Vec::new();
    let mut unknown = Vec::new();
    for identifier in wanted {
        match found.iter().find(|u| matches_identifier(u, identifier)) {
            Some(user) if !users.iter().any(|u| u.id == user.id) => users.push(user.clone()),
            Some(_) => {}
            None => unknown.push(identifier.to_string()),
        }
    }
    if !unknown.is_empty() {
        return Err(AppError::bad_input(
            field,
            format!("unknown users: {}", unknown.join(", ")),
        ));
    }
    Ok(users)
}

/// One user by username, email or id.
pub async fn resolve_identifier(app: &AppState, identifier: &str) -> AppResult<user::Model> {
    let identifier = identifier.trim();
    user::Entity::find()
        .filter(identifier_condition(identifier))
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::NotFound("user not found".into()))
}

fn identifier_condition(identifier: &str) -> Condition {
    if let Ok(id) = Uuid::parse_str(identifier) {
        Condition::all().add(user::Column::Id.eq(id))
    } else if identifier.contains('@') {
        Condition::all().add(user::Column::Email.eq(identifier.to_lowercase()))
    } else {
        Condition::all().add(user::Column::UsernameKey.eq(validate::username_key(identifier)))
    }
}

fn matches_identifier(user: &user::Model, identifier: &str) -> bool {
    match Uuid::parse_str(identifier) {
        Ok(id) => user.id == id,
        Err(_) if identifier.contains('@') => user.email == identifier.to_lowercase(),
        Err(_) => user.username_key == validate::username_key(identifier),
    }
}
