//! Account operations: register, login, refreshing tokens, logout, me, profile and password
//! changes.
use async_graphql::{Context, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::{context::ContextExt, types::User};
use crate::domain::{
    accounts::{self, NewAccount, ProfileChanges},
    sessions::{self, SignedIn},
};

/// Input of `register`.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 3–32 letters, digits or `_`, starting with a letter; unique without regard to case.
    pub username: String,
    /// A valid email address; unique without regard to case.
    pub email: String,
    /// 8–128 characters.
    #[graphql(secret)] // masked in the parse span of the `Tracing` extension
    pub password: String,
    /// Optional full name, at most 100 characters.
    pub full_name: Option<String>,
}

/// Input of `login`.
#[derive(InputObject)]
pub struct LoginInput {
    /// Email or username.
    pub login: String,
    /// The account's password.
    #[graphql(secret)]
    pub password: String,
}

/// Input of `updateProfile`; omitted fields stay as they are, an empty text clears it.
#[derive(InputObject, Default)]
pub struct UpdateProfileInput {
    /// New username.
    pub username: Option<String>,
    /// New email address.
    pub email: Option<String>,
    /// New full name (empty clears it).
    pub full_name: Option<String>,
    /// New bio, at most 500 characters (empty clears it).
    pub bio: Option<String>,
}

/// Input of `changePassword`.
#[derive(InputObject)]
pub struct ChangePasswordInput {
    /// The password in use now.
    #[graphql(secret)]
    pub current_password: String,
    /// The new password, 8–128 characters.
    #[graphql(secret)]
    pub new_password: String,
}

/// A signed-in session: send `accessToken` as `Authorization: Bearer <token>`; before it expires
/// (or when a request is refused with `UNAUTHENTICATED`), trade `refreshToken` in with the
/// `refreshToken` mutation for new ones.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// The access token (a JWT).
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// When the access token stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// An opaque token (`goftgu_rt_…`) that the `refreshToken` mutation trades, once, for new
    /// tokens of this session. Keep it secret; it is never shown again.
    pub refresh_token: String,
    /// When the refresh token stops being accepted, and the session ends, unless traded in before.
    pub refresh_expires_at: DateTime<Utc>,
    /// The signed-in user.
    pub user: User,
}

impl From<SignedIn> for AuthPayload {
    fn from(s: SignedIn) -> Self {
        Self {
            access_token: s.access_token,
            token_type: "bearer".into(),
            expires_at: s.expires_at,
            refresh_token: s.refresh_token,
            refresh_expires_at: s.refresh_expires_at,
            user: User::own(s.user),
        }
    }
}

/// Account queries.
#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The signed-in user.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<User> {
        let viewer = ctx.viewer()?;
        Ok(User::own(accounts::me(ctx.app(), viewer).await?))
    }
}

/// Account mutations.
#[derive(Default)]
pub struct AccountMutation;

#[Object]
impl AccountMutation {
    /// Creates an account and signs it in.
    async fn register(
        &self,
        ctx: &Context<'_>,
        input: RegisterInput,
    ) -> async_graphql::Result<AuthPayload> {
        let account = NewAccount {
            username: input.username,
            email: input.email,
            password: input.password,
            full_name: input.full_name,
        };
        Ok(accounts::register(ctx.app(), ctx.client_ip(), account)
            .await?
            .into())
    }

    /// Signs in with email or username and password.
    async fn login(
        &self,
        ctx: &Context<'_>,
        input: LoginInput,
    ) -> async_graphql::Result<AuthPayload> {
        Ok(
            accounts::login(ctx.app(), ctx.client_ip(), &input.login, input.password)
                .await?
                .into(),
        )
    }

    /// Trades a refresh token for a new access token and a new refresh token of the same
    /// session; the one presented stops working. Needs no `Authorization` header (an expired
    /// access token sent along is ignored). Presenting a refresh token that was already traded
    /// in signs its whole session out (its access tokens, refresh token and sockets), so never
    /// send one token twice, not even from two tabs at once.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(secret)] token: String,
    ) -> async_graphql::Result<AuthPayload> {
        Ok(sessions::refresh(ctx.app(), ctx.client_ip(), &token)
            .await?
            .into())
    }

    /// Revokes the token this request was made with, and its session's refresh token.
    async fn logout(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        sessions::revoke(ctx.app(), ctx.viewer()?).await?;
        Ok(true)
    }

    /// Changes the signed-in user's profile.
    async fn update_profile(
        &self,
        ctx: &Context<'_>,
        input: UpdateProfileInput,
    ) -> async_graphql::Result<User> {
        let changes = ProfileChanges {
            username: input.username,
            email: input.email,
            full_name: input.full_name,
            bio: input.bio,
        };
        Ok(User::own(
            accounts::update_profile(ctx.app(), ctx.viewer()?, changes).await?,
        ))
    }

    /// Changes the password (the current one is required); every other session is signed out.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> async_graphql::Result<bool> {
        let viewer = ctx.viewer()?;
        accounts::change_password(
            ctx.app(),
            viewer,
            input.current_password,
            input.new_password,
        )
        .await?;
        Ok(true)
    }
}
