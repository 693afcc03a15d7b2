//! Accounts: register, log in, change profile or password. Signing in starts a session; the
//! sessions themselves (tokens, revocation, expiry) live in `sessions`.
use std::net::IpAddr;

use chrono::Utc;
use migration::unique;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::{
    Viewer, in_transaction,
    sessions::{self, SignedIn},
    validate,
};
use crate::{
    auth::password,
    db::{self, UniqueViolation},
    entity::user,
    error::{AppError, AppResult},
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

/// Creates an account and signs it in; `client` is where the request came from (limited per
/// address).
#[tracing::instrument(skip_all, fields(user))]
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
    let inserted = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        username_key: Set(validate::username_key(&username)),
        username: Set(username.clone()),
        email: Set(email.clone()),
        password_hash: Set(password_hash),
        full_name: Set(full_name),
        bio: Set(None),
        avatar_url: Set(None),
        is_staff: Set(false),
        last_seen_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        presence_visibility: Set(user::PresenceVisibility::Everyone),
    }
    .insert(&app.db)
    .await;
    let user = match inserted {
        Ok(user) => user,
        Err(err) => return Err(taken(app, None, Some(&username), Some(&email), err).await),
    };
    tracing::Span::current().record("user", tracing::field::display(user.id));
    sessions::start(app, user).await
}

/// Signs in by email or username; `client` is where the request came from.
#[tracing::instrument(skip_all, fields(user))]
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
        Some(user) if ok => {
            tracing::Span::current().record("user", tracing::field::display(user.id));
            sessions::start(app, user).await
        }
        _ => Err(AppError::Unauthenticated(BAD_CREDENTIALS.into())),
    }
}

/// The caller's own account.
pub async fn me(app: &AppState, viewer: &Viewer) -> AppResult<user::Model> {
    user::Entity::find_by_id(viewer.user_id)
        .one(&app.db)
        .await?
        .ok_or_else(|| AppError::Unauthenticated("account no longer exists".into()))
}

/// Updates the caller's own profile.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id))]
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
    if let Some(username) = &username {
        model.username_key = Set(validate::username_key(username));
        model.username = Set(username.clone());
    }
    if let Some(email) = &email {
        model.email = Set(email.clone());
    }
    if let Some(full_name) = full_name {
        model.full_name = Set(full_name);
    }
    if let Some(bio) = bio {
        model.bio = Set(bio);
    }
    model.updated_at = Set(Utc::now());
    match model.update(&app.db).await {
        Ok(user) => Ok(user),
        Err(err) => {
            let (username, email) = (username.as_deref(), email.as_deref());
            Err(taken(app, Some(viewer.user_id), username, email, err).await)
        }
    }
}

/// Changes the caller's password after checking the current one; every other session is
/// revoked, in the same transaction.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id))]
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
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            model.update(txn).await?;
            sessions::revoke_others(txn, outbox, viewer, now).await
        })
    })
    .await
}

/// Grants or revokes staff rights (operator command, not an API operation).
pub async fn set_staff(app: &AppState, identifier: &str, is_staff: bool) -> AppResult<user::Model> {
    let user = find_by_identifier(app, identifier)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no user `{identifier}`")))?;
    let mut model: user::ActiveModel = user.into();
    model.is_staff = Set(is_staff);
    model.updated_at = Set(Utc::now());
    let user = model.update(&app.db).await?;
    // Cached sessions carry the old rights: every instance that shares Redis (or this one)
    // verifies the user's sessions again; one that shares nothing with this process (the CLI
    // against a lone SQLite server) sees the change once its cache entries age out (30 s).
    app.sessions.invalidate(user.id).await;
    Ok(user)
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
            return Err(username_taken());
        }
        if email.is_some_and(|e| e == other.email) {
            return Err(email_taken());
        }
    }
    Ok(())
}

fn username_taken() -> AppError {
    AppError::conflict("username", "username is already taken")
}

fn email_taken() -> AppError {
    AppError::conflict("email", "email is already registered")
}

/// A write refused by a unique constraint (a race with a concurrent request, lost after the
/// pre-check passed) becomes the same CONFLICT as the pre-check. PostgreSQL names the
/// constraint; SQLite does not, so there the taken field is looked up again.
async fn taken(
    app: &AppState,
    me: Option<Uuid>,
    username: Option<&str>,
    email: Option<&str>,
    err: DbErr,
) -> AppError {
    match db::unique_violation(&err) {
        None => err.into(),
        Some(UniqueViolation::Named(unique::USERS_EMAIL)) => email_taken(),
        Some(UniqueViolation::Named(unique::USERS_USERNAME)) => username_taken(),
        Some(_) => match ensure_available(app, me, username, email).await {
            Err(taken) => taken,
            // The row in the way is already gone again: name the field the pre-check names first.
            Ok(()) => username_taken(),
        },
    }
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
