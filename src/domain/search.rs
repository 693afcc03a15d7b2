//! Ranked full-text search over the messages of the caller's chats: the words of the query (the
//! last one as a prefix) must all appear; results come best match first (PostgreSQL `ts_rank`,
//! SQLite FTS5 `bm25`), with a highlighted snippet, filtered by chat, sender, attachments and
//! date. The index is kept by the database with the message (see the migration), so an edit or
//! a deletion shows at once. Deleted messages are never found.
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, Statement, Value,
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access},
    validate,
};
use crate::{
    entity::message,
    error::{AppError, AppResult},
    state::AppState,
};

/// Largest page of results.
pub const PAGE_MAX: u64 = 50;
/// Most words a query uses.
const WORDS_MAX: usize = 10;
/// Where a snippet's matches start and stop before escaping (control characters, never in the
/// HTML that comes out).
const START: char = '\u{2}';
const STOP: char = '\u{3}';

/// What to look for, and where.
#[derive(Clone, Debug, Default)]
pub struct Search {
    pub text: String,
    pub chat_id: Option<Uuid>,
    pub from: Option<Uuid>,
    pub has_attachment: Option<bool>,
    pub sent_after: Option<DateTime<Utc>>,
    pub sent_before: Option<DateTime<Utc>>,
}

/// One result: the message, how well it matched (higher is better), and its text around the
/// matches as HTML (escaped, matches in `<mark>`).
pub struct Hit {
    pub message: message::Model,
    pub score: f64,
    pub snippet: String,
}

/// The words of a query: runs of letters and digits, lower-cased.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(WORDS_MAX)
        .map(str::to_lowercase)
        .collect()
}

/// A statement's text and values, with the backend's placeholders.
struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => format!("${}", self.values.len()),
            _ => "?".to_string(),
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

#[derive(FromQueryResult)]
struct Found {
    id: Uuid,
    score: f64,
    snippet: Option<String>,
}

#[derive(FromQueryResult)]
struct Counted {
    n: i64,
}

/// The query, checked: its words, and the chat filter's access.
async fn prepare(app: &AppState, viewer: &Viewer, search: &Search) -> AppResult<Vec<String>> {
    let words = words(&search.text);
    if words.is_empty() || search.text.chars().count() > 200 {
        return Err(AppError::bad_input(
            "query",
            "query must have a word (letters or digits) and at most 200 characters",
        ));
    }
    if let (Some(after), Some(before)) = (search.sent_after, search.sent_before)
        && after >= before
    {
        return Err(AppError::bad_input(
            "sentBefore",
            "sentBefore must be later than sentAfter",
        ));
    }
    if let Some(chat) = search.chat_id {
        chat_access(app, viewer, chat, Need::Member).await?;
    }
    Ok(words)
}

/// The FROM and WHERE of a search: the match, the caller's chats, the filters.
fn matching(sql: &mut Sql, viewer: &Viewer, search: &Search, words: &[String]) {
    let last = words.len() - 1;
    match sql.backend {
        DbBackend::Postgres => {
            let query: Vec<String> = words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == last {
                        format!("{w}:*")
                    } else {
                        w.clone()
                    }
                })
                .collect();
            let q = sql.bind(query.join(" & "));
            sql.push(&format!(
                " FROM messages m, to_tsquery('simple', {q}) q WHERE m.search @@ q"
            ));
        }
        _ => {
            let query: Vec<String> = words
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    if i == last {
                        format!("\"{w}\"*")
                    } else {
                        format!("\"{w}\"")
                    }
                })
                .collect();
            let q = sql.bind(query.join(" "));
            sql.push(&format!(
                " FROM messages_fts JOIN messages m ON m.rowid = messages_fts.rowid \
                 WHERE messages_fts MATCH {q}"
            ));
        }
    }
    let me = sql.bind(viewer.user_id);
    sql.push(&format!(
        " AND m.deleted_at IS NULL \
         AND m.chat_id IN (SELECT chat_id FROM chat_members WHERE user_id = {me})"
    ));
    if let Some(chat) = search.chat_id {
        let chat = sql.bind(chat);
        sql.push(&format!(" AND m.chat_id = {chat}"));
    }
    if let Some(from) = search.from {
        let from = sql.bind(from);
        sql.push(&format!(" AND m.sender_id = {from}"));
    }
    if let Some(has) = search.has_attachment {
        let not = if has { "" } else { "NOT " };
        sql.push(&format!(
            " AND {not}EXISTS (SELECT 1 FROM files f WHERE f.message_id = m.id)"
        ));
    }
    if let Some(after) = search.sent_after {
        let after = sql.bind(after);
        sql.push(&format!(" AND m.created_at > {after}"));
    }
    if let Some(before) = search.sent_before {
        let before = sql.bind(before);
        sql.push(&format!(" AND m.created_at < {before}"));
    }
}

/// A page of results, best first, skipping the first `offset`.
pub async fn ranked(
    app: &AppState,
    viewer: &Viewer,
    search: &Search,
    first: u64,
    offset: u64,
) -> AppResult<(Vec<Hit>, bool)> {
    validate::page_size("first", first as i64, PAGE_MAX)?;
    let words = prepare(app, viewer, search).await?;
    let backend = app.db.get_database_backend();
    let mut sql = Sql {
        backend,
        text: String::new(),
        values: Vec::new(),
    };
    match backend {
        DbBackend::Postgres => {
            let options = sql.bind(format!(
                "StartSel={START}, StopSel={STOP}, MaxWords=24, MinWords=8, MaxFragments=2, \
                 FragmentDelimiter=\" … \""
            ));
            sql.push(&format!(
                "SELECT m.id, CAST(ts_rank(m.search, q) AS double precision) AS score, \
                 ts_headline('simple', coalesce(m.content, ''), q, {options}) AS snippet"
            ));
        }
        _ => sql.push(
            "SELECT m.id, -bm25(messages_fts) AS score, \
             snippet(messages_fts, 0, char(2), char(3), '…', 16) AS snippet",
        ),
    }
    matching(&mut sql, viewer, search, &words);
    let limit = sql.bind((first + 1) as i64);
    let skip = sql.bind(offset as i64);
    sql.push(&format!(
        " ORDER BY score DESC, m.id DESC LIMIT {limit} OFFSET {skip}"
    ));
    let mut found = Found::find_by_statement(Statement::from_sql_and_values(
        backend, sql.text, sql.values,
    ))
    .all(&app.db)
    .await?;
    let has_next = found.len() as u64 > first;
    found.truncate(first as usize);
    let ids: Vec<Uuid> = found.iter().map(|f| f.id).collect();
    let mut messages = message::Entity::find()
        .filter(message::Column::Id.is_in(ids))
        .all(&app.db)
        .await?;
    let hits = found
        .into_iter()
        .filter_map(|f| {
            let at = messages.iter().position(|m| m.id == f.id)?;
            Some(Hit {
                message: messages.swap_remove(at),
                score: f.score,
                snippet: highlighted(f.snippet.as_deref().unwrap_or_default()),
            })
        })
        .collect();
    Ok((hits, has_next))
}

/// How many messages `ranked` finds in all.
pub async fn count(app: &AppState, viewer: &Viewer, search: &Search) -> AppResult<u64> {
    let words = prepare(app, viewer, search).await?;
    let backend = app.db.get_database_backend();
    let mut sql = Sql {
        backend,
        text: "SELECT COUNT(*) AS n".to_string(),
        values: Vec::new(),
    };
    matching(&mut sql, viewer, search, &words);
    let counted = Counted::find_by_statement(Statement::from_sql_and_values(
        backend, sql.text, sql.values,
    ))
    .one(&app.db)
    .await?;
    Ok(counted.map_or(0, |c| u64::try_from(c.n).unwrap_or(0)))
}

/// A snippet as HTML: the text escaped, the matches in `<mark>`.
fn highlighted(snippet: &str) -> String {
    let mut html = String::with_capacity(snippet.len() + 16);
    for c in snippet.chars() {
        match c {
            START => html.push_str("<mark>"),
            STOP => html.push_str("</mark>"),
            '&' => html.push_str("&amp;"),
            '<' => html.push_str("&lt;"),
            '>' => html.push_str("&gt;"),
            '"' => html.push_str("&quot;"),
            '\'' => html.push_str("&#39;"),
            c if c.is_control() && c != '\n' => {}
            c => html.push(c),
        }
    }
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_letters_and_digits_lower_cased() {
        assert_eq!(
            words("Hello, wörld! 42 سلام"),
            ["hello", "wörld", "42", "سلام"]
        );
        assert!(words(" *\"' -- ").is_empty());
        assert_eq!(words(&"a ".repeat(50)).len(), WORDS_MAX);
    }

    #[test]
    fn snippets_are_escaped_html_with_marked_matches() {
        let raw = format!("<b>{START}hi{STOP}</b> & \"you\"");
        assert_eq!(
            highlighted(&raw),
            "&lt;b&gt;<mark>hi</mark>&lt;/b&gt; &amp; &quot;you&quot;"
        );
    }
}
