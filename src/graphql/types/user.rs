//! The `User` type. Email is shown only to its owner and to staff; online state and last seen
//! to whom the user's `presenceVisibility` allows.
use async_graphql::{Context, ID, Object};
use chrono::{DateTime, Utc};

use crate::{
    domain::access,
    entity::user::{self, PresenceVisibility},
    graphql::{
        context::ContextExt,
        loaders::{FriendOf, OnlineOf},
    },
};

/// A `User` as shown to the caller.
pub struct User {
    model: user::Model,
    /// Set when the caller is known to be this user (e.g. right after signing in).
    is_caller: bool,
}

impl User {
    /// Another user, or the caller as identified by the request's token.
    pub fn new(model: user::Model) -> Self {
        Self {
            model,
            is_caller: false,
        }
    }

    /// The caller's own account, shown in full even before a token is attached.
    pub fn own(model: user::Model) -> Self {
        Self {
            model,
            is_caller: true,
        }
    }

    /// Whether the caller may see this user's presence (`privacy`).
    async fn presence_shown(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        let Ok(viewer) = ctx.viewer() else {
            return Ok(self.is_caller);
        };
        let (me, them) = (viewer.user_id, self.model.id);
        let visibility = self.model.presence_visibility;
        let friend = visibility == PresenceVisibility::Friends
            && me != them
            && ctx
                .loader()
                .load_one(FriendOf { me, other: them })
                .await?
                .unwrap_or(false);
        Ok(self.is_caller || access::sees_presence(me, them, visibility, friend))
    }
}

/// A person with an account.
#[Object]
impl User {
    /// Stable unique id.
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// Unique handle (3–32 letters, digits or `_`), unique without regard to case.
    async fn username(&self) -> &str {
        &self.model.username
    }

    /// Email address; only visible to the user themself and to staff, otherwise null.
    async fn email(&self, ctx: &Context<'_>) -> Option<&str> {
        let visible = self.is_caller
            || ctx
                .viewer()
                .is_ok_and(|v| v.user_id == self.model.id || v.is_staff);
        visible.then_some(self.model.email.as_str())
    }

    /// Full name, if the user gave one.
    async fn full_name(&self) -> Option<&str> {
        self.model.full_name.as_deref()
    }

    /// The name to show: the full name, or the username when there is none.
    async fn display_name(&self) -> &str {
        self.model
            .full_name
            .as_deref()
            .unwrap_or(&self.model.username)
    }

    /// Short self-description.
    async fn bio(&self) -> Option<&str> {
        self.model.bio.as_deref()
    }

    /// URL of the profile image, if one was uploaded.
    async fn avatar_url(&self, ctx: &Context<'_>) -> Option<String> {
        let stored = self.model.avatar_url.as_deref()?;
        Some(crate::domain::files::absolute(ctx.app(), stored))
    }

    /// Staff can read every chat.
    async fn is_staff(&self) -> bool {
        self.model.is_staff
    }

    /// Whether they have a live connection right now (on any instance); false when their
    /// `presenceVisibility` hides it from the caller.
    async fn is_online(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        if !self.presence_shown(ctx).await? {
            return Ok(false);
        }
        let online = ctx.loader().load_one(OnlineOf(self.model.id)).await?;
        Ok(online.unwrap_or(false))
    }

    /// When their last connection closed (or they last called `touchLastSeen`); null when their
    /// `presenceVisibility` hides it from the caller.
    async fn last_seen(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        Ok(if self.presence_shown(ctx).await? {
            self.model.last_seen_at
        } else {
            None
        })
    }

    /// Who may see my online state and last seen; only shown to the user themself.
    async fn presence_visibility(&self, ctx: &Context<'_>) -> Option<PresenceVisibility> {
        let mine = self.is_caller || ctx.viewer().is_ok_and(|v| v.user_id == self.model.id);
        mine.then_some(self.model.presence_visibility)
    }

    /// When the account was created.
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
}
