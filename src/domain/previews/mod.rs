//! Link previews: after a message is sent, the first http(s) link in its text is fetched in the
//! background (`fetch`, safely) and what the page says about itself (`html`) is stored, cached
//! per URL for a day (failed fetches too), bound to the message, and announced
//! (`LinkPreviewReady` in `chatEvents`). An edit that changes the link unbinds the old preview and
//! fetches the new one; a fetch that ends after its link left the message binds nothing. Off
//! with `GOFTGU_LINK_PREVIEWS=false`.
mod fetch;
mod html;

use std::sync::{Arc, LazyLock};

use chrono::{Duration, Utc};
use reqwest::Url;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, JoinType, QueryFilter, QuerySelect, Set,
    sea_query::OnConflict,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::{
    entity::{
        link_preview::{self, of_message},
        message,
    },
    error::AppResult,
    events::{Event, Topic},
    state::AppState,
};

/// Longest link considered.
const URL_MAX: usize = 2048;
/// How long a fetched preview (or a failure) is reused.
const FRESH_HOURS: i64 = 24;
/// Fetches running at once on one instance.
static FETCHING: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(8));
/// The fetch clients, built once.
static CLIENTS: LazyLock<Option<Arc<fetch::Clients>>> = LazyLock::new(
    || match fetch::Clients::new() {
        Ok(clients) => Some(Arc::new(clients)),
        Err(err) => {
            tracing::error!(error = %err, "link previews are off: their HTTP client could not be built");
            None
        }
    },
);

/// The first http(s) link in `text`, without the punctuation that usually ends a sentence.
fn first_link(text: &str) -> Option<Url> {
    text.split_whitespace().find_map(|word| {
        let lower = word.to_ascii_lowercase();
        let start = lower.find("http://").or_else(|| lower.find("https://"))?;
        let link = word[start..].trim_end_matches(|c: char| {
            matches!(
                c,
                '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']' | '}' | '"' | '\'' | '>'
            )
        });
        if link.len() > URL_MAX {
            return None;
        }
        let url = Url::parse(link).ok()?;
        matches!(url.scheme(), "http" | "https").then_some(url)
    })
}

/// Whether an edit from `before` to `after` changes the message's first link (its preview goes
/// with the old one, and the new one gets its own).
pub fn link_changed(before: Option<&str>, after: &str) -> bool {
    before.and_then(first_link) != first_link(after)
}

/// Unbinds the preview of a message whose link changed (in the edit's transaction, so the edit's
/// event never shows the old preview).
pub async fn unbind(db: &impl ConnectionTrait, message_id: Uuid) -> AppResult<()> {
    of_message::Entity::delete_many()
        .filter(of_message::Column::MessageId.eq(message_id))
        .exec(db)
        .await?;
    Ok(())
}

/// Starts the preview of a message just sent or edited to a new link, when its text has one.
pub fn after_send(app: &AppState, message: &message::Model) {
    if !app.config.previews.enabled {
        return;
    }
    let Some(url) = message.content.as_deref().and_then(first_link) else {
        return;
    };
    let app = app.clone();
    let (message_id, chat_id) = (message.id, message.chat_id);
    tokio::spawn(async move {
        let Ok(_turn) = FETCHING.acquire().await else {
            return;
        };
        let outcome = match prepare(&app, message_id, chat_id, url).await {
            Ok(outcome) => outcome,
            Err(err) => {
                err.log();
                "failed"
            }
        };
        app.metrics
            .previews
            .get_or_create(&vec![("outcome", outcome.to_string())])
            .inc();
    });
}

/// Fetches (or reuses) the preview of `url` and binds it to the message; the outcome's name.
async fn prepare(
    app: &AppState,
    message_id: Uuid,
    chat_id: Uuid,
    url: Url,
) -> AppResult<&'static str> {
    let key = url.as_str().to_string();
    let fresh_since = Utc::now() - Duration::hours(FRESH_HOURS);
    let cached = link_preview::Entity::find_by_id(key.clone())
        .filter(link_preview::Column::FetchedAt.gt(fresh_since))
        .one(&app.db)
        .await?;
    let (preview, outcome) = match cached {
        Some(preview) => (preview, "cached"),
        None => {
            let (preview, outcome) = fetched(app, &key, url).await;
            store(app, &preview).await?;
            (preview, outcome)
        }
    };
    if !preview.ok {
        return Ok(outcome);
    }
    // The message may have been edited (or deleted) while its link was fetched: a preview is
    // bound only to a message that still shows its link.
    let shown = message::Entity::find_by_id(message_id)
        .filter(message::Column::DeletedAt.is_null())
        .one(&app.db)
        .await?
        .and_then(|m| m.content.as_deref().and_then(first_link))
        .is_some_and(|link| link.as_str() == key);
    if !shown {
        return Ok("stale");
    }
    of_message::Entity::insert(of_message::ActiveModel {
        message_id: Set(message_id),
        url: Set(key),
    })
    .on_conflict(
        OnConflict::column(of_message::Column::MessageId)
            .update_column(of_message::Column::Url)
            .to_owned(),
    )
    .exec_without_returning(&app.db)
    .await?;
    let event = Event::LinkPreviewReady {
        chat_id,
        message_id,
    };
    app.bus.publish(Topic::Chat(chat_id), event).await;
    Ok(if outcome == "cached" {
        outcome
    } else {
        "ready"
    })
}

/// A fresh fetch of `url`: the preview to store (`ok` false when there is nothing to show) and
/// the outcome's name.
async fn fetched(app: &AppState, key: &str, url: Url) -> (link_preview::Model, &'static str) {
    let mut preview = link_preview::Model {
        url: key.to_string(),
        ok: false,
        title: None,
        description: None,
        image_url: None,
        site_name: None,
        fetched_at: Utc::now(),
    };
    let Some(clients) = CLIENTS.as_ref() else {
        return (preview, "failed");
    };
    let (at, page) = match fetch::page(clients, &app.config.previews, url).await {
        Ok(found) => found,
        Err(fetch::Failure::Refused) => return (preview, "refused"),
        Err(fetch::Failure::Failed) => return (preview, "failed"),
    };
    let meta = html::meta(&page);
    if meta.is_empty() {
        return (preview, "failed");
    }
    preview.ok = true;
    preview.title = meta.title;
    preview.description = meta.description;
    preview.site_name = meta.site_name;
    // Relative to the page; only a web address is kept.
    preview.image_url = meta
        .image
        .and_then(|image| at.join(&image).ok())
        .filter(|image| matches!(image.scheme(), "http" | "https"))
        .map(String::from)
        .filter(|image| image.len() <= URL_MAX);
    (preview, "ready")
}

async fn store(app: &AppState, preview: &link_preview::Model) -> AppResult<()> {
    link_preview::Entity::insert(link_preview::ActiveModel::from(preview.clone()))
        .on_conflict(
            OnConflict::column(link_preview::Column::Url)
                .update_columns([
                    link_preview::Column::Ok,
                    link_preview::Column::Title,
                    link_preview::Column::Description,
                    link_preview::Column::ImageUrl,
                    link_preview::Column::SiteName,
                    link_preview::Column::FetchedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&app.db)
        .await?;
    Ok(())
}

/// The previews of `messages` that have one, with their message ids.
pub async fn of_messages(
    app: &AppState,
    messages: &[Uuid],
) -> AppResult<Vec<(Uuid, link_preview::Model)>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let rows = of_message::Entity::find()
        .select_also(link_preview::Entity)
        .join(JoinType::InnerJoin, bound_preview())
        .filter(of_message::Column::MessageId.is_in(messages.iter().copied()))
        .all(&app.db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(bound, preview)| Some((bound.message_id, preview?)))
        .collect())
}

fn bound_preview() -> sea_orm::RelationDef {
    of_message::Entity::belongs_to(link_preview::Entity)
        .from(of_message::Column::Url)
        .to(link_preview::Column::Url)
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_web_link_without_trailing_punctuation() {
        let link = |t: &str| first_link(t).map(String::from);
        assert_eq!(
            link("see (https://example.com/a?b=1), and http://x.org").as_deref(),
            Some("https://example.com/a?b=1")
        );
        assert_eq!(
            link("go to HTTP://Example.com.").as_deref(),
            Some("http://example.com/")
        );
        assert_eq!(link("ftp://example.com and mailto:a@b.c"), None);
        assert_eq!(link("no links here"), None);
    }
}
