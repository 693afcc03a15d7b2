//! Events publish themselves on commit: a write's events reach subscribers only once its data is
//! committed, in the order recorded, and a write that fails publishes nothing. Unique-constraint
//! violations are told apart by the constraint names the migrations create, so a lost race
//! answers CONFLICT on the right field.
use chrono::Utc;
use goftgu::{
    db::{UniqueViolation, unique_violation},
    domain::{autocommit, chats::new_chat, in_transaction},
    entity::{
        chat::{self, ChatKind},
        user,
    },
    error::AppError,
    events::{Delivered, Event, Topic},
};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;
use uuid::Uuid;

use crate::helpers::{PASSWORD, TestApp, error_code, error_field, spawn_app};

fn refused() -> AppError {
    AppError::bad_input("name", "refused after writing")
}

/// A chat row not written yet, its id, and a subscriber to its topic.
fn unwritten_chat(app: &TestApp) -> (chat::ActiveModel, Uuid, Receiver<Arc<Delivered>>) {
    let now = Utc::now();
    let row = new_chat(ChatKind::Group, Some("x".into()), None, true, None, now);
    let id = row.id.clone().unwrap();
    (row, id, app.state.bus.subscribe(Topic::Chat(id)))
}

#[tokio::test]
async fn a_failed_write_publishes_nothing() {
    let (app, _dir) = spawn_app().await;
    let state = &app.state;
    let (row, id, mut events) = unwritten_chat(&app);
    let failed = in_transaction(state, |txn, outbox| {
        Box::pin(async move {
            row.insert(txn).await?;
            outbox.record(Topic::Chat(id), Event::ChatUpdated { chat_id: id });
            Err::<(), _>(refused())
        })
    })
    .await;
    assert!(failed.is_err());
    let found = chat::Entity::find_by_id(id).one(&state.db).await.unwrap();
    assert!(found.is_none(), "the transaction was rolled back");

    let failed = autocommit(state, |_, outbox| {
        Box::pin(async move {
            outbox.record(Topic::Chat(id), Event::ChatUpdated { chat_id: id });
            Err::<(), _>(refused())
        })
    })
    .await;
    assert!(failed.is_err());
    assert!(
        events.try_recv().is_err(),
        "no event of a failed write is published"
    );
}

#[tokio::test]
async fn a_committed_write_publishes_its_events_after_the_commit_in_order() {
    let (app, _dir) = spawn_app().await;
    let state = &app.state;
    let (row, id, mut events) = unwritten_chat(&app);
    // Whoever hears of the write can already read it.
    let listener = tokio::spawn({
        let db = state.db.clone();
        async move {
            let mut heard = Vec::new();
            for _ in 0..3 {
                let delivered = events.recv().await.unwrap();
                let visible = chat::Entity::find_by_id(id).one(&db).await.unwrap();
                heard.push((delivered.event.clone(), visible.is_some()));
            }
            heard
        }
    });
    let message_id = Uuid::new_v4();
    in_transaction(state, |txn, outbox| {
        Box::pin(async move {
            outbox.record(Topic::Chat(id), Event::ChatUpdated { chat_id: id });
            row.insert(txn).await?;
            let deleted = Event::MessageDeleted {
                chat_id: id,
                message_id,
            };
            outbox.record(Topic::Chat(id), deleted);
            Ok(())
        })
    })
    .await
    .unwrap();
    autocommit(state, |_, outbox| {
        Box::pin(async move {
            outbox.record(Topic::Chat(id), Event::ChatUpdated { chat_id: id });
            Ok(())
        })
    })
    .await
    .unwrap();

    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), listener)
        .await
        .expect("three events")
        .unwrap();
    assert!(
        heard.iter().all(|(_, visible)| *visible),
        "every event came after the commit"
    );
    assert!(matches!(heard[0].0, Event::ChatUpdated { .. }));
    assert!(matches!(heard[1].0, Event::MessageDeleted { message_id: m, .. } if m == message_id));
    assert!(matches!(heard[2].0, Event::ChatUpdated { .. }));
}

#[tokio::test]
async fn the_database_names_the_constraints_the_migrations_create() {
    let (app, _dir) = spawn_app().await;
    let db = &app.state.db;
    let sara = app.register("sara").await;
    let sara = user::Entity::find_by_id(Uuid::parse_str(&sara.id).unwrap())
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let postgres = std::env::var("TEST_DATABASE_URL").is_ok();
    for (taken, constraint) in [
        ("username", migration::unique::USERS_USERNAME),
        ("email", migration::unique::USERS_EMAIL),
    ] {
        // A copy of Sara's row (past the registration pre-check) with only `taken` the same.
        let mut row: user::ActiveModel = sara.clone().into();
        row.id = Set(Uuid::now_v7());
        if taken == "username" {
            row.email = Set("other@example.com".into());
        } else {
            row.username_key = Set("other".into());
        }
        let err = row.insert(db).await.unwrap_err();
        // PostgreSQL names the constraint; SQLite only says which kind of error it is.
        let expected = if postgres {
            UniqueViolation::Named(constraint)
        } else {
            UniqueViolation::Unnamed
        };
        assert_eq!(unique_violation(&err), Some(expected), "{err:?}");
    }
}

#[tokio::test]
async fn racing_registrations_of_one_name_lose_with_a_conflict_on_that_field() {
    let (app, _dir) = spawn_app().await;
    const RACERS: usize = 6;
    let register = |username: String, email: String| {
        let app = &app;
        async move {
            app.gql(
                None,
                "mutation($input: RegisterInput!) { register(input: $input) { user { id } } }",
                json!({ "input": { "username": username, "email": email, "password": PASSWORD } }),
            )
            .await
        }
    };
    for field in ["username", "email"] {
        // Every racer passes the availability check before any of them has written its row
        // (the password hashing in between takes long), so the losers meet the constraint.
        let racers = (0..RACERS).map(|i| match field {
            "username" => register(format!("same{field}"), format!("u{i}@example.com")),
            _ => register(format!("user{i}"), "same@example.com".into()),
        });
        let answers = futures_util::future::join_all(racers).await;
        let won = answers.iter().filter(|a| a["errors"].is_null()).count();
        assert_eq!(won, 1, "{answers:?}");
        for answer in answers.iter().filter(|a| !a["errors"].is_null()) {
            assert_eq!(error_code(answer), "CONFLICT", "{answer}");
            assert_eq!(error_field(answer), Some(field), "{answer}");
        }
    }
}
