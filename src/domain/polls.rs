//! Polls: a poll is a message of its chat (kind `POLL`, the question as its text) with 2–10
//! options, single or multiple choice, open or anonymous, closed by its creator or when its
//! `closesAt` passes (found by `close_due`, on every instance, once). Members vote and take their
//! vote back; every change is announced (`PollUpdated`) so results are live.
use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, sea_query::Expr,
};
use uuid::Uuid;

use super::{
    Viewer,
    access::{Need, chat_access, message_access},
    in_transaction, messages,
};
use crate::{
    entity::{
        message::MessageKind,
        poll::{self, option, vote},
    },
    error::{AppError, AppResult},
    events::{Event, Topic},
    limits::Action,
    state::AppState,
};

/// Options a poll has, at least and at most.
pub const OPTIONS: std::ops::RangeInclusive<usize> = 2..=10;
/// Longest question, and longest option, in characters.
pub const QUESTION_MAX: usize = 300;
pub const OPTION_MAX: usize = 100;
/// Furthest a closing time may lie ahead.
const CLOSES_WITHIN_DAYS: i64 = 366;

/// Input of `createPoll`.
pub struct NewPoll {
    pub chat_id: Uuid,
    pub question: String,
    pub options: Vec<String>,
    pub multiple: bool,
    pub anonymous: bool,
    pub closes_at: Option<DateTime<Utc>>,
}

fn text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max {
        return Err(AppError::bad_input(
            field,
            format!("{field} must be 1–{max} characters long"),
        ));
    }
    Ok(trimmed.to_string())
}

fn checked(input: &NewPoll) -> AppResult<(String, Vec<String>)> {
    let question = text("question", &input.question, QUESTION_MAX)?;
    if !OPTIONS.contains(&input.options.len()) {
        return Err(AppError::bad_input(
            "options",
            format!(
                "a poll has {} to {} options",
                OPTIONS.start(),
                OPTIONS.end()
            ),
        ));
    }
    let mut options = Vec::with_capacity(input.options.len());
    for option in &input.options {
        let option = text("options", option, OPTION_MAX)?;
        if options
            .iter()
            .any(|o: &String| o.to_lowercase() == option.to_lowercase())
        {
            return Err(AppError::bad_input("options", "options must differ"));
        }
        options.push(option);
    }
    if let Some(at) = input.closes_at {
        let now = Utc::now();
        if at <= now || at > now + Duration::days(CLOSES_WITHIN_DAYS) {
            return Err(AppError::bad_input(
                "closesAt",
                "closesAt must be in the future, within a year",
            ));
        }
    }
    Ok((question, options))
}

/// Posts a poll in a chat; returns its message.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, chat = %input.chat_id))]
pub async fn create(
    app: &AppState,
    viewer: &Viewer,
    input: NewPoll,
) -> AppResult<crate::entity::message::Model> {
    app.limits.per_user(Action::Send, viewer, 1).await?;
    let (question, options) = checked(&input)?;
    chat_access(app, viewer, input.chat_id, Need::Post).await?;
    let sender = viewer.user_id;
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            let kind = MessageKind::Poll;
            let message =
                messages::write(txn, outbox, input.chat_id, sender, kind, question).await?;
            poll::ActiveModel {
                id: Set(message.id),
                chat_id: Set(message.chat_id),
                multiple: Set(input.multiple),
                anonymous: Set(input.anonymous),
                closes_at: Set(input.closes_at),
                closed_at: Set(None),
            }
            .insert(txn)
            .await?;
            let rows = options
                .into_iter()
                .enumerate()
                .map(|(i, text)| option::ActiveModel {
                    poll_id: Set(message.id),
                    position: Set(i as i16),
                    text: Set(text),
                });
            option::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await?;
            Ok(message)
        })
    })
    .await
}

/// The poll `poll_id`, when the caller has `need` on its chat.
async fn poll_access(
    app: &AppState,
    viewer: &Viewer,
    poll_id: Uuid,
    need: Need,
) -> AppResult<(crate::entity::message::Model, poll::Model)> {
    let not_found = || AppError::NotFound("poll not found".into());
    let (message, _) =
        message_access(app, viewer, poll_id, need)
            .await
            .map_err(|err| match err {
                AppError::NotFound(_) => not_found(),
                other => other,
            })?;
    if message.deleted_at.is_some() {
        return Err(not_found());
    }
    let poll = poll::Entity::find_by_id(poll_id)
        .one(&app.db)
        .await?
        .ok_or_else(not_found)?;
    Ok((message, poll))
}

/// Replaces the caller's vote with the options at `positions` (one, unless the poll takes
/// several).
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, poll = %poll_id))]
pub async fn vote(
    app: &AppState,
    viewer: &Viewer,
    poll_id: Uuid,
    positions: &[i32],
) -> AppResult<poll::Model> {
    let (_, poll) = poll_access(app, viewer, poll_id, Need::Member).await?;
    if poll.is_closed(Utc::now()) {
        return Err(AppError::bad_input("pollId", "the poll is closed"));
    }
    let count = option::Entity::find()
        .filter(option::Column::PollId.eq(poll_id))
        .count(&app.db)
        .await?;
    let distinct: HashSet<i32> = positions.iter().copied().collect();
    let valid = !positions.is_empty()
        && distinct.len() == positions.len()
        && positions.iter().all(|&p| (0..count as i32).contains(&p))
        && (poll.multiple || positions.len() == 1);
    if !valid {
        let rule = if poll.multiple {
            "one or more different options"
        } else {
            "exactly one option"
        };
        return Err(AppError::bad_input(
            "options",
            format!(
                "choose {rule}, by position (0 to {})",
                count.saturating_sub(1)
            ),
        ));
    }
    let user = viewer.user_id;
    let positions: Vec<i16> = positions.iter().map(|&p| p as i16).collect();
    in_transaction(app, |txn, outbox| {
        Box::pin(async move {
            vote::Entity::delete_many()
                .filter(vote::Column::PollId.eq(poll.id))
                .filter(vote::Column::UserId.eq(user))
                .exec(txn)
                .await?;
            let now = Utc::now();
            let rows = positions.into_iter().map(|position| vote::ActiveModel {
                poll_id: Set(poll.id),
                user_id: Set(user),
                position: Set(position),
                voted_at: Set(now),
            });
            vote::Entity::insert_many(rows)
                .exec_without_returning(txn)
                .await?;
            outbox.record(Topic::Chat(poll.chat_id), updated(&poll));
            Ok(poll)
        })
    })
    .await
}

/// Takes the caller's vote back.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, poll = %poll_id))]
pub async fn retract(app: &AppState, viewer: &Viewer, poll_id: Uuid) -> AppResult<poll::Model> {
    let (_, poll) = poll_access(app, viewer, poll_id, Need::Member).await?;
    if poll.is_closed(Utc::now()) {
        return Err(AppError::bad_input("pollId", "the poll is closed"));
    }
    let removed = vote::Entity::delete_many()
        .filter(vote::Column::PollId.eq(poll.id))
        .filter(vote::Column::UserId.eq(viewer.user_id))
        .exec(&app.db)
        .await?;
    if removed.rows_affected > 0 {
        app.bus
            .publish(Topic::Chat(poll.chat_id), updated(&poll))
            .await;
    }
    Ok(poll)
}

/// Closes a poll: its creator only.
#[tracing::instrument(skip_all, fields(user = %viewer.user_id, poll = %poll_id))]
pub async fn close(app: &AppState, viewer: &Viewer, poll_id: Uuid) -> AppResult<poll::Model> {
    let (message, poll) = poll_access(app, viewer, poll_id, Need::Read).await?;
    if message.sender_id != Some(viewer.user_id) {
        return Err(AppError::Forbidden("only its creator closes a poll".into()));
    }
    if poll.closed_at.is_some() {
        return Ok(poll);
    }
    closed(app, poll, Utc::now()).await
}

/// Marks `poll` closed at `at` unless it already is (another instance, or its creator, was
/// first) and announces it.
async fn closed(app: &AppState, poll: poll::Model, at: DateTime<Utc>) -> AppResult<poll::Model> {
    let changed = poll::Entity::update_many()
        .col_expr(poll::Column::ClosedAt, Expr::value(at))
        .filter(poll::Column::Id.eq(poll.id))
        .filter(poll::Column::ClosedAt.is_null())
        .exec(&app.db)
        .await?;
    if changed.rows_affected == 1 {
        app.bus
            .publish(Topic::Chat(poll.chat_id), updated(&poll))
            .await;
    }
    Ok(poll::Model {
        closed_at: Some(at),
        ..poll
    })
}

fn updated(poll: &poll::Model) -> Event {
    Event::PollUpdated {
        chat_id: poll.chat_id,
        poll_id: poll.id,
    }
}

/// Closes the polls whose `closesAt` has passed (run every second).
pub async fn close_due(app: &AppState) {
    let now = Utc::now();
    let due = poll::Entity::find()
        .filter(poll::Column::ClosedAt.is_null())
        .filter(poll::Column::ClosesAt.lte(now))
        .order_by_asc(poll::Column::ClosesAt)
        .limit(100)
        .all(&app.db)
        .await;
    let due = match due {
        Ok(due) => due,
        Err(err) => return AppError::from(err).log(),
    };
    for poll in due {
        let at = poll.closes_at.unwrap_or(now);
        if let Err(err) = closed(app, poll, at).await {
            err.log();
        }
    }
}

/// The polls of `messages` (those that are polls).
pub async fn of_messages(app: &AppState, messages: &[Uuid]) -> AppResult<Vec<poll::Model>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    Ok(poll::Entity::find()
        .filter(poll::Column::Id.is_in(messages.iter().copied()))
        .all(&app.db)
        .await?)
}

/// The options of `polls`, by position.
pub async fn options_of(app: &AppState, polls: &[Uuid]) -> AppResult<Vec<option::Model>> {
    Ok(option::Entity::find()
        .filter(option::Column::PollId.is_in(polls.iter().copied()))
        .order_by_asc(option::Column::Position)
        .all(&app.db)
        .await?)
}

/// The votes on `polls`, oldest first.
pub async fn votes_of(app: &AppState, polls: &[Uuid]) -> AppResult<Vec<vote::Model>> {
    Ok(vote::Entity::find()
        .filter(vote::Column::PollId.is_in(polls.iter().copied()))
        .order_by_asc(vote::Column::VotedAt)
        .all(&app.db)
        .await?)
}
