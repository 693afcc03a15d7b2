//! What a resolver asks its context: the app state and who is calling.
use async_graphql::Context;

use crate::{
    auth::{AuthState, Viewer},
    error::AppResult,
    state::AppState,
};

const ANONYMOUS: AuthState = AuthState::Anonymous;

/// Accessors every resolver uses.
pub trait ContextExt {
    /// The shared application state.
    fn app(&self) -> &AppState;
    /// What the transport learned about the caller.
    fn auth(&self) -> &AuthState;
    /// The batched database reader.
    fn loader(&self) -> &crate::graphql::loaders::Loaders;
    /// Where the request came from (for per-address limits), when the transport knows.
    fn client_ip(&self) -> Option<std::net::IpAddr>;
    /// The signed-in caller, or `UNAUTHENTICATED`.
    fn viewer(&self) -> AppResult<&Viewer> {
        self.auth().viewer()
    }
}

impl ContextExt for Context<'_> {
    fn app(&self) -> &AppState {
        self.data_unchecked::<AppState>()
    }

    fn loader(&self) -> &crate::graphql::loaders::Loaders {
        self.data_unchecked::<std::sync::Arc<crate::graphql::loaders::Loaders>>()
    }

    fn auth(&self) -> &AuthState {
        self.data_opt::<AuthState>().unwrap_or(&ANONYMOUS)
    }

    fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.data_opt::<crate::limits::ClientIp>()
            .and_then(|client| client.0)
    }
}
