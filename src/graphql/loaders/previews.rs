//! The loader of messages' link previews, batched like the rest.
use std::collections::HashMap;

use async_graphql::dataloader::Loader;
use uuid::Uuid;

use super::{Db, ids};
use crate::{domain::previews, entity::link_preview, error::AppError};

key!(/// A message's link preview.
    PreviewOf);

impl Loader<PreviewOf> for Db {
    type Value = link_preview::Model;
    type Error = AppError;

    async fn load(
        &self,
        keys: &[PreviewOf],
    ) -> Result<HashMap<PreviewOf, link_preview::Model>, AppError> {
        let rows = previews::of_messages(&self.0, &ids(keys, |k| k.0)).await?;
        Ok(rows
            .into_iter()
            .map(|(message, preview)| (PreviewOf(message), preview))
            .collect())
    }
}
