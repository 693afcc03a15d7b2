//! Web Push: the key browsers subscribe with, and my browsers' push subscriptions.
use async_graphql::{Context, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};

use super::context::ContextExt;
use crate::{domain::push, entity::push_subscription};

/// One of my browsers' push subscriptions.
#[derive(SimpleObject)]
pub struct PushSubscription {
    /// The subscription's id.
    pub id: ID,
    /// The push service's URL for that browser.
    pub endpoint: String,
    /// When it was last registered.
    pub registered_at: DateTime<Utc>,
}

impl From<push_subscription::Model> for PushSubscription {
    fn from(model: push_subscription::Model) -> Self {
        Self {
            id: ID(model.id.to_string()),
            endpoint: model.endpoint,
            registered_at: model.registered_at,
        }
    }
}

/// The VAPID key and my subscriptions.
#[derive(Default)]
pub struct PushQuery;

#[Object]
impl PushQuery {
    /// The server's VAPID public key (base64url, an uncompressed P-256 point): the
    /// `applicationServerKey` to pass to `pushManager.subscribe`.
    async fn vapid_public_key(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        ctx.viewer()?;
        Ok(push::vapid_public_key(ctx.app()).to_string())
    }

    /// My browsers' push subscriptions, most recently registered first.
    async fn push_subscriptions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<PushSubscription>> {
        let list = push::mine(ctx.app(), ctx.viewer()?).await?;
        Ok(list.into_iter().map(PushSubscription::from).collect())
    }
}

/// Registering and removing push subscriptions.
#[derive(Default)]
pub struct PushMutation;

#[Object]
impl PushMutation {
    /// Registers this browser's push subscription (`PushSubscription.toJSON()`: `endpoint`, and
    /// `keys.p256dh` and `keys.auth`, base64url). My notifications are then pushed to it while
    /// I have no live connection. Registering an endpoint again renews it (and moves it to me);
    /// beyond the server's limit (10 by default) the least recently registered is dropped. The
    /// endpoint must be an `https://` URL.
    async fn register_push_subscription(
        &self,
        ctx: &Context<'_>,
        endpoint: String,
        #[graphql(name = "p256dh")] p256dh: String,
        auth: String,
    ) -> async_graphql::Result<PushSubscription> {
        let saved = push::register(ctx.app(), ctx.viewer()?, &endpoint, &p256dh, &auth).await?;
        Ok(saved.into())
    }

    /// Removes my push subscription with this endpoint (after `unsubscribe()` in the browser, or
    /// when signing out there). Whether there was one.
    async fn unregister_push_subscription(
        &self,
        ctx: &Context<'_>,
        endpoint: String,
    ) -> async_graphql::Result<bool> {
        Ok(push::unregister(ctx.app(), ctx.viewer()?, &endpoint).await?)
    }
}
