//! Accounts and sessions: register, log in and out, authenticate a token, change profile or
//! password. A token is valid only while its session row is unexpired and unrevoked.
use std::net::IpAddr;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, SqlErr,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{Viewer, validate};
use crate::{
    auth::password,
    entity::{session, user},
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// One message for every failed login, so it never reveals which part was wrong.
const BAD_CREDENTIALS: &str = "invalid login or password";

/// Input of `register`.
pub struct NewAccount {
    pub username: String,
    pub email: String,
    pub password: String,
    pub full_name: Option<String>,
}

/// Changes to a profile; `None` leaves a field as it is.
#[derive(Default)]
pub struct ProfileChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub full_name: Option<String>,
    pub bio: Option<String>,
}

/// A freshly issued access token and its user.
pub struct SignedIn {
    pub access_token: String,
    pub expires_at: chrono::DateTime<Utc>,
    pub user: user::Model,
}

/// Creates an account and signs it in; `client` is where the request came from (limited per
/// address).
pub async fn register(
    app: &AppState,
    client: Option<IpAddr>,
    input: NewAccount,
) -> AppResult<SignedIn> {
    let username = validate::username("username", input.username.trim())?;
    let email = validate::email("email", &input.email)?;
    validate::password("password", &input.password)?;
    let full_name = validate::optional_text(
        "fullName",
        input.full_name.as_deref(),
        validate::FULL_NAME_MAX,
    )?;
    // Spent by well-formed attempts only (a mistyped form costs nothing), before the lookup that
    // would tell which names exist and before the password hashing.
    app.limits.per_address(Action::Register, client).await?;
    ensure_available(app, None, Some(&username), Some(&email)).await?;

    let password_hash = password::hash(input.password).await?;
    let now = Utc::now();
    let model = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        username_key: Set(validate::username_key(&username)),
        username: Set(username),
        email: Set(email),
        password_hash: Set(password_hash),
        full_name: Set(full_name),
        bio: Set(None),
        avatar_url: Set(None),
        is_staff: Set(false),
        last_seen_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.db)
    .await
    .map_err(unique_violation_to_conflict)?;
    start_session(app, model).await
}

/// Signs in by email or username; `client` is where the request came from.
pub async fn login(
    app: &AppState,
    client: Option<IpAddr>,
    login: &str,
    password_text: String,
) -> AppResult<SignedIn> {
    // Limit guesses per client address and per account name, before any password work is done.
    app.limits.per_address(Action::Login, client).await?;
    let name = login.trim().to_lowercase();
    app.limits.spend(Action::LoginName, &name, 1).await?;
    let found = find_by_identifier(app, login).await?;
    // Verify against a dummy hash when the user is unknown, so timing does not reveal accounts.
    let phc = found
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| app.dummy_password_hash.to_string());
    let ok = password::verify(password_text, phc).await?;
    match found {
        Some(user) if ok => start_session(app, user).await,
        _ => Err(AppError::Unauthenticated(BAD_CREDENTIALS.into())),
    }
}

/// Revokes the session the caller presented.
pub async fn logout(app: &AppState, viewer: &Viewer) -> AppResult<()> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(session::Column::Id.eq(viewer.session_id))
        .exec(&app.db)
        .await?;
    let event = Event::SessionsRevoked {
        user_id: viewer.user_id,
        only: Some(viewer.session_id),
        except: None,
    };
    app.bus.publish(Topic::User(viewer.user_id), event).await;
    Ok(())
}

/// Resolves a bearer token to its viewer: signature, expiry, session and user all checked.
pub async fn authenticate(app: &AppState, token: &str) -> AppResult<Viewer> {
    let claims = app.keys.decode(token)?;
    let revoked = || AppError::Unauthenticated("token revoked or expired".into());
    let (session, user) = session::Entity::find_by_id(claims.jti)
        .find_also_related(user::Entity)
        .one(&app.db)
        .await?
        .ok_or_else(revoked)?;
    let user = user.ok_or_else(revoked)?;
    if session.user_id != claims.sub
        || session.revoked_at.is_some()
        || session.expires_at <= Utc::now()
    {
        return Err(revoked());
    }
    Ok(Viewer {
        user_id: user.id,
        session_id: session.id,
        is_staff: user.is_staff,
    })
}

/// The caller's own account.
pub async fn me(app: &AppState, viewer: &Viewer) -> AppResult<user::Model> {
    user::Entity::find_by_id(viewer.user_id)
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("account no longer exists".into()))
}

/// Updates the caller's own profile.
pub async fn update_profile(
    app: &AppState,
    viewer: &Viewer,
    changes: ProfileChanges,
) -> AppResult<user::Model> {
    let current = me(app, viewer).await?;
    let username = changes
        .username
        .as_deref()
        .map(|u| validate::username("username", u.trim()))
        .transpose()?;
    let email = changes
        .email
        .as_deref()
        .map(|e| validate::email("email", e))
        .transpose()?;
    let full_name = changes
        .full_name
        .as_deref()
        .map(|f| validate::optional_text("fullName", Some(f), validate::FULL_NAME_MAX))
        .transpose()?;
    let bio = changes
        .bio
        .as_deref()
        .map(|b| validate::optional_text("bio", Some(b), validate::BIO_MAX))
        .transpose()?;
    ensure_available(app, Some(current.id), username.as_deref(), email.as_deref()).await?;

    let mut model: user::ActiveModel = current.into();
    if let Some(username) = username {
        model.username_key = Set(validate::username_key(&username));
        model.username = Set(username);
    }
    if let Some(email) = email {
        model.email = Set(email);
    }
    if let Some(full_name) = full_name {
        model.full_name = Set(full_name);
    }
    if let Some(bio) = bio {
        model.bio = Set(bio);
    }
    model.updated_at = Set(Utc::now());
    model
        .update(&app.db)
        .await
        .map_err(unique_violation_to_conflict)
}

/// Changes the caller's password after checking the current one; every other session is revoked.
pub async fn change_password(
    app: &AppState,
    viewer: &Viewer,
    current_password: String,
    new_password: String,
) -> AppResult<()> {
    validate::password("newPassword", &new_password)?;
    let user = me(app, viewer).await?;
    if !password::verify(current_password, user.password_hash.clone()).await? {
        return Err(AppError::bad_input(
            "currentPassword",
            "current password is wrong",
        ));
    }
    let hash = password::hash(new_password).await?;
    let now = Utc::now();
    let mut model: user::ActiveModel = user.into();
    model.password_hash = Set(hash);
    model.updated_at = Set(now);
    model.update(&app.db).await?;
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .filter(session::Column::UserId.eq(viewer.user_id))
        .filter(session::Column::Id.ne(viewer.session_id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(&app.db)
        .await?;
    let event = Event::SessionsRevoked {
        user_id: viewer.user_id,
        only: None,
        except: Some(viewer.session_id),
    };
    app.bus.publish(Topic::User(viewer.user_id), event).await;
    Ok(())
}

/// Grants or revokes staff rights (operator command, not an API operation).
pub async fn set_staff(app: &AppState, identifier: &str, is_staff: bool) -> AppResult<user::Model> {
    let user = find_by_identifier(app, identifier)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user `{identifier}`")))?;
    let mut model: user::ActiveModel = user.into();
    model.is_staff = Set(is_staff);
    model.updated_at = Set(Utc::now());
    Ok(model.update(&app.db).await?)
}

/// Finds a user by email (anything with `@`) or by username, case-insensitively.
pub async fn find_by_identifier(
    app: &AppState,
    identifier: &str,
) -> AppResult<Option<user::Model>> {
    let identifier = identifier.trim();
    let condition = if identifier.contains('@') {
        user::Column::Email.eq(identifier.to_lowercase())
    } else {
        user::Column::UsernameKey.eq(validate::username_key(identifier))
    };
    Ok(user::Entity::find().filter(condition).one(&app.db).await?)
}

/// Issues a token backed by a new session row, and prunes the user's expired sessions.
async fn start_session(app: &AppState, user: user::Model) -> AppResult<SignedIn> {
    let now = Utc::now();
    session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user.id))
        .filter(session::Column::ExpiresAt.lt(now))
        .exec(&app.db)
        .await?;
    let expires_at = app.keys.expiry_from(now);
    let session = session::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user.id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
    }
    .insert(&app.db)
    .await?;
    let access_token = app.keys.issue(user.id, session.id, now, expires_at)?;
    Ok(SignedIn {
        access_token,
        expires_at,
        user,
    })
}

/// Refuses a username or email already used by someone other than `me`, naming the field.
async fn ensure_available(
    app: &AppState,
    me: Option<Uuid>,
    username: Option<&str>,
    email: Option<&str>,
) -> AppResult<()> {
    let mut any = Condition::any();
    if let Some(username) = username {
        any = any.add(user::Column::UsernameKey.eq(validate::username_key(username)));
    }
    if let Some(email) = email {
        any = any.add(user::Column::Email.eq(email));
    }
    if username.is_none() && email.is_none() {
        return Ok(());
    }
    let mut query = user::Entity::find().filter(any);
    if let Some(me) = me {
        query = query.filter(user::Column::Id.ne(me));
    }
    for other in query.all(&app.db).await? {
        if username.is_some_and(|u| validate::username_key(u) == other.username_key) {
            return Err(AppError::conflict("username", "username is already taken"));
        }
        if email.is_some_and(|e| e == other.email) {
            return Err(AppError::conflict("email", "email is already registered"));
        }
    }
    Ok(())
}

/// A unique-index race lost to a concurrent request becomes the same `CONFLICT` as the pre-check.
fn unique_violation_to_conflict(err: sea_orm::DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(detail)) if detail.contains("email") => {
            AppError::conflict("email", "email is already registered")
        }
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            AppError::conflict("username", "username is already taken")
        }
        _ => err.into(),
    }
}

/// When the caller's session stops being valid by itself; UNAUTHENTICATED when it is already
/// revoked or expired (a database error is not such a verdict and stays an error of its own).
pub async fn session_expiry(app: &AppState, viewer: &Viewer) -> AppResult<chrono::DateTime<Utc>> {
    session::Entity::find_by_id(viewer.session_id)
        .one(&app.db)
        .await?
        .filter(|s| s.revoked_at.is_none() && s.expires_at > Utc::now())
        .map(|s| s.expires_at)
        .ok_or_else(|| AppError::Unauthenticated("token revoked or expired".into()))
}

/// Re-checks, for a long-lived connection, that the session it authenticated with is still
/// valid (not logged out, not expired).
pub async fn ensure_session_active(app: &AppState, viewer: &Viewer) -> AppResult<()> {
    session_expiry(app, viewer).await.map(|_| ())
}

/// The ids of the chats a user belongs to.
pub async fn chat_ids(app: &AppState, user_id: Uuid) -> AppResult<Vec<Uuid>> {
    use crate::entity::chat_member;
    Ok(chat_member::Entity::find()
        .filter(chat_member::Column::UserId.eq(user_id))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|m| m.chat_id)
        .collect())
}
