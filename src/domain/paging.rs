//! Keyset pages: every list asks for one row beyond the page, so whether more follow is known
//! from the page query itself, without a count.
use sea_orm::{ConnectionTrait, EntityTrait, QuerySelect, Select};

use crate::error::AppResult;

/// The rows of one page of an ordered query, and whether more rows follow it.
pub async fn fetch_page<E>(
    query: Select<E>,
    size: u64,
    db: &impl ConnectionTrait,
) -> AppResult<(Vec<E::Model>, bool)>
where
    E: EntityTrait,
{
    let mut rows = query.limit(size.saturating_add(1)).all(db).await?;
    let more = rows.len() as u64 > size;
    rows.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    Ok((rows, more))
}
