//! The send path under concurrency: every acknowledged message lands once, `seq` is gap-free in
//! commit order, and `createdAt` never goes backwards against it.
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

use crate::fixtures::create_group;
use crate::helpers::spawn_app;

#[tokio::test]
async fn sixty_four_concurrent_senders_get_gap_free_seq_and_created_at_in_order() {
    let (app, _dir) = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..8 {
        users.push(app.register(&format!("sender{i}")).await);
    }
    let names: Vec<&str> = users[1..].iter().map(|u| u.username.as_str()).collect();
    let chat = create_group(&app, &users[0].token, "burst", &names).await;
    let sends = (0..64).map(|i| {
        let (app, user, chat) = (&app, &users[i % users.len()], chat.clone());
        async move {
            app.gql_ok(
                Some(&user.token),
                "mutation($c: ID!, $t: String!) { sendMessage(input: { chatId: $c, content: $t }) { id createdAt } }",
                json!({ "c": chat, "t": format!("message {i}") }),
            )
            .await["sendMessage"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    });
    let acknowledged = futures_util::future::join_all(sends).await;

    let chat_id: uuid::Uuid = chat.parse().unwrap();
    let rows = goftgu::entity::message::Entity::find()
        .filter(goftgu::entity::message::Column::ChatId.eq(chat_id))
        .order_by_asc(goftgu::entity::message::Column::Seq)
        .all(&app.state.db)
        .await
        .unwrap();
    let seqs: Vec<i64> = rows.iter().map(|m| m.seq).collect();
    let first = seqs[0];
    assert_eq!(
        seqs,
        (first..first + rows.len() as i64).collect::<Vec<_>>(),
        "seq has no gap"
    );
    for id in &acknowledged {
        assert!(
            rows.iter().any(|m| m.id.to_string() == *id),
            "acknowledged {id} is stored"
        );
    }
    for pair in rows.windows(2) {
        assert!(
            pair[0].created_at <= pair[1].created_at,
            "createdAt goes backwards: seq {} at {} then seq {} at {}",
            pair[0].seq,
            pair[0].created_at,
            pair[1].seq,
            pair[1].created_at
        );
    }

    // The API lists them in the same order, with the same times.
    let page = app
        .gql_ok(
            Some(&users[0].token),
            "query($c: ID!) { messages(chatId: $c, last: 100) { nodes { id createdAt } } }",
            json!({ "c": chat }),
        )
        .await;
    let listed: Vec<&str> = page["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["createdAt"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), rows.len());
    let parsed: Vec<chrono::DateTime<chrono::FixedOffset>> = listed
        .iter()
        .map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap())
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] <= w[1]), "{listed:?}");

    if std::env::var("TEST_DATABASE_URL").is_err() {
        // SQLite: the sends were committed together, several to a transaction.
        let (batches, sends) = batch_counts(&app).await;
        assert_eq!(sends, 64.0, "every send went through the writer");
        assert!(batches < sends, "{batches} transactions for {sends} sends");
    }
}

/// SQLite's group commit so far: (transactions, sends they carried), from `/metrics`.
async fn batch_counts(app: &crate::helpers::TestApp) -> (f64, f64) {
    let body = crate::metrics::scrape(app).await;
    (
        crate::metrics::sample(&body, "goftgu_send_batches_total"),
        crate::metrics::sample(&body, "goftgu_batched_sends_total"),
    )
}

#[tokio::test]
async fn a_send_failing_inside_its_batch_fails_alone_and_its_batch_mates_land() {
    use sea_orm::ConnectionTrait;
    let (app, _dir) = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(app.register(&format!("batch{i}")).await);
    }
    let names: Vec<&str> = users[1..].iter().map(|u| u.username.as_str()).collect();
    let chat = create_group(&app, &users[0].token, "poisoned", &names).await;
    // The database itself refuses one row, after every check of the server passed: the write
    // fails inside the transaction that carries it.
    let db = &app.state.db;
    if db.get_database_backend() == sea_orm::DbBackend::Postgres {
        db.execute_unprepared(
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.content = 'poison' THEN RAISE EXCEPTION 'poisoned row'; END IF; \
             RETURN NEW; END $$",
        )
        .await
        .unwrap();
        db.execute_unprepared(
            "CREATE TRIGGER poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION poison()",
        )
        .await
        .unwrap();
    } else {
        db.execute_unprepared(
            "CREATE TRIGGER poison BEFORE INSERT ON messages WHEN NEW.content = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned row'); END",
        )
        .await
        .unwrap();
    }
    let (batches_before, sends_before) = batch_counts(&app).await;
    let sends = (0..32).map(|i| {
        let (app, user, chat) = (&app, &users[i % users.len()], chat.clone());
        let text = if i == 13 { "poison".to_owned() } else { format!("fine {i}") };
        async move {
            let answer = app
                .gql(
                    Some(&user.token),
                    "mutation($c: ID!, $t: String!) { sendMessage(input: { chatId: $c, content: $t }) { id content } }",
                    json!({ "c": chat, "t": text }),
                )
                .await;
            (text, answer)
        }
    });
    let answers = futures_util::future::join_all(sends).await;
    for (text, answer) in &answers {
        if text == "poison" {
            assert_eq!(crate::helpers::error_code(answer), "INTERNAL", "{answer}");
            assert!(answer["data"]["sendMessage"].is_null(), "{answer}");
        } else {
            assert_eq!(answer["data"]["sendMessage"]["content"], *text, "{answer}");
        }
    }
    let chat_id: uuid::Uuid = chat.parse().unwrap();
    let rows = goftgu::entity::message::Entity::find()
        .filter(goftgu::entity::message::Column::ChatId.eq(chat_id))
        .order_by_asc(goftgu::entity::message::Column::Seq)
        .all(db)
        .await
        .unwrap();
    let fine: Vec<&str> = rows
        .iter()
        .filter_map(|m| m.content.as_deref())
        .filter(|c| c.starts_with("fine "))
        .collect();
    assert_eq!(fine.len(), 31, "{fine:?}");
    assert!(rows.iter().all(|m| m.content.as_deref() != Some("poison")));
    let first = rows[0].seq;
    let seqs: Vec<i64> = rows.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (first..first + rows.len() as i64).collect::<Vec<_>>());

    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        let (batches, sends) = batch_counts(&app).await;
        assert_eq!(sends - sends_before, 32.0);
        assert!(
            batches - batches_before < 32.0,
            "some sends shared a transaction"
        );
    }
}

#[tokio::test]
async fn a_send_costs_two_statements_on_postgres() {
    let (app, _dir) = crate::helpers::spawn_app_with(crate::n_plus_one::quiet_background).await;
    let ana = app.register("ana").await;
    let bob = app.register("bob").await;
    let chat = create_group(&app, &ana.token, "count", &[bob.username.as_str()]).await;
    let send = "mutation($c: ID!) { sendMessage(input: { chatId: $c, content: \"hi\" }) { id seq: createdAt } }";
    // Warm: the session is verified and cached by the first request.
    app.gql_ok(Some(&ana.token), send, json!({ "c": chat }))
        .await;
    let before = crate::n_plus_one::quiet_count(&app).await;
    app.gql_ok(Some(&ana.token), send, json!({ "c": chat }))
        .await;
    let statements = crate::n_plus_one::quiet_count(&app).await - before;
    eprintln!("sendMessage: {statements} SQL statements");
    if std::env::var("TEST_DATABASE_URL").is_ok() {
        // The access check, then one statement that writes everything.
        assert_eq!(statements, 2, "sendMessage on PostgreSQL");
    } else {
        // The access check, then the writer's three writes (BEGIN and COMMIT are not counted),
        // in process; concurrent sends share them (group commit).
        assert_eq!(statements, 4, "sendMessage on SQLite");
    }
}

#[tokio::test]
async fn refused_sends_in_a_burst_fail_alone_and_the_others_land() {
    let (app, _dir) = spawn_app().await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(app.register(&format!("member{i}")).await);
    }
    let muted = app.register("muted").await;
    let stranger = app.register("stranger").await;
    let mut names: Vec<&str> = members[1..].iter().map(|u| u.username.as_str()).collect();
    names.push("muted");
    let chat = create_group(&app, &members[0].token, "burst", &names).await;
    app.gql_ok(
        Some(&members[0].token),
        "mutation($c: ID!, $u: ID!) { muteMember(chatId: $c, userId: $u, muted: true) }",
        json!({ "c": chat, "u": muted.id }),
    )
    .await;
    let too_long = "x".repeat(app.state.config.max_message_length + 1);
    let send =
        "mutation($c: ID!, $t: String!) { sendMessage(input: { chatId: $c, content: $t }) { id } }";
    // Good sends from every member, and the three refusals, all at once.
    let mut attempts: Vec<(&str, String, Option<&str>)> = Vec::new();
    for round in 0..4 {
        for member in &members {
            attempts.push((
                &member.token,
                format!("{} says {round}", member.username),
                None,
            ));
        }
    }
    attempts.push((&muted.token, "muted speaks".into(), Some("FORBIDDEN")));
    attempts.push((&stranger.token, "stranger speaks".into(), Some("NOT_FOUND")));
    attempts.push((&members[1].token, too_long, Some("BAD_USER_INPUT")));
    let answers = futures_util::future::join_all(
        attempts
            .iter()
            .map(|(token, text, _)| app.gql(Some(token), send, json!({ "c": chat, "t": text }))),
    )
    .await;
    let mut landed = 0;
    for ((_, text, refusal), answer) in attempts.iter().zip(&answers) {
        match refusal {
            Some(code) => {
                assert_eq!(
                    crate::helpers::error_code(answer),
                    *code,
                    "{text:.20}: {answer}"
                );
                assert!(answer["data"].is_null(), "{answer}");
            }
            None => {
                assert!(answer.get("errors").is_none(), "{text}: {answer}");
                landed += 1;
            }
        }
    }
    let page = app
        .gql_ok(
            Some(&members[0].token),
            "query($c: ID!) { messages(chatId: $c, last: 100) { nodes { content } } }",
            json!({ "c": chat }),
        )
        .await;
    let contents: Vec<&str> = page["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(landed, 24);
    for (_, text, refusal) in &attempts {
        let stored = contents.contains(&text.as_str());
        assert_eq!(stored, refusal.is_none(), "{text:.20} stored: {stored}");
    }
}

/// GraphQL over `client` to a server process; the JSON answer (None when the request failed:
/// the process is gone).
async fn call(
    client: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> Option<serde_json::Value> {
    let mut request = client
        .post(format!("{base}/graphql"))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.ok()?.json().await.ok()
}

#[tokio::test]
async fn a_server_killed_during_a_burst_keeps_every_acknowledged_message_in_order() {
    use crate::public_graphql::start_process_on;
    let dir = tempfile::tempdir().unwrap();
    let database_url = crate::helpers::fresh_database_url(dir.path()).await;
    let secret = format!("test-secret-{}", uuid::Uuid::new_v4());
    let unlimited = [
        ("GOFTGU_LIMIT_SEND_PER_MINUTE", "0"),
        ("GOFTGU_LIMIT_REGISTER_PER_MINUTE", "0"),
    ];
    let mut server = start_process_on(dir.path(), &database_url, &secret, &unlimited).await;
    let client = reqwest::Client::new();
    let register = "mutation($u: String!, $e: String!) { register(input: { username: $u, email: $e, password: \"correct horse battery\" }) { accessToken } }";
    let mut tokens = Vec::new();
    for i in 0..8 {
        let answer = call(
            &client,
            &server.base,
            None,
            register,
            json!({ "u": format!("killed{i}"), "e": format!("k{i}@example.com") }),
        )
        .await
        .unwrap();
        tokens.push(
            answer["data"]["register"]["accessToken"]
                .as_str()
                .unwrap_or_else(|| panic!("{answer}"))
                .to_owned(),
        );
    }
    let created = call(
        &client,
        &server.base,
        Some(&tokens[0]),
        "mutation($m: [String!]!) { createGroup(input: { name: \"killed\", members: $m }) { id } }",
        json!({ "m": (1..8).map(|i| format!("k{i}@example.com")).collect::<Vec<_>>() }),
    )
    .await
    .unwrap();
    let chat = created["data"]["createGroup"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();

    // Sixteen senders in a loop; the server is killed (SIGKILL) while they send.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let send =
        "mutation($c: ID!, $t: String!) { sendMessage(input: { chatId: $c, content: $t }) { id } }";
    let mut senders = Vec::new();
    for s in 0..16 {
        let (client, base, token, chat, acknowledged) = (
            client.clone(),
            server.base.clone(),
            tokens[s % tokens.len()].clone(),
            chat.clone(),
            acknowledged.clone(),
        );
        senders.push(tokio::spawn(async move {
            for n in 0.. {
                let text = format!("sender {s} message {n}");
                let Some(answer) = call(
                    &client,
                    &base,
                    Some(&token),
                    send,
                    json!({ "c": chat, "t": text }),
                )
                .await
                else {
                    return;
                };
                if answer["data"]["sendMessage"]["id"].is_string() {
                    acknowledged.lock().unwrap().push(text);
                }
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < 200 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    // Restarted on the same database, it serves what was committed.
    let server = start_process_on(dir.path(), &database_url, &secret, &unlimited).await;
    let db = sea_orm::Database::connect(&database_url).await.unwrap();
    let chat_id: uuid::Uuid = chat.parse().unwrap();
    let rows = goftgu::entity::message::Entity::find()
        .filter(goftgu::entity::message::Column::ChatId.eq(chat_id))
        .order_by_asc(goftgu::entity::message::Column::Seq)
        .all(&db)
        .await
        .unwrap();
    let stored: std::collections::HashSet<&str> =
        rows.iter().filter_map(|m| m.content.as_deref()).collect();
    for text in &acknowledged {
        assert!(
            stored.contains(text.as_str()),
            "acknowledged `{text}` is gone after the kill"
        );
    }
    assert!(
        rows.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "seq has a gap"
    );
    assert!(
        rows.windows(2).all(|w| w[0].created_at <= w[1].created_at),
        "createdAt in seq order"
    );
    // Each sender's messages in the order it sent them.
    for s in 0..16 {
        let prefix = format!("sender {s} message ");
        let own: Vec<u64> = rows
            .iter()
            .filter_map(|m| {
                m.content
                    .as_deref()?
                    .strip_prefix(prefix.as_str())?
                    .parse()
                    .ok()
            })
            .collect();
        assert!(own.windows(2).all(|w| w[0] < w[1]), "sender {s}: {own:?}");
    }
    let page = call(
        &client,
        &server.base,
        Some(&tokens[0]),
        "query($c: ID!) { messages(chatId: $c, last: 100) { nodes { content } } }",
        json!({ "c": chat }),
    )
    .await
    .unwrap();
    let newest: Vec<&str> = page["data"]["messages"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    let expected: Vec<&str> = rows
        .iter()
        .rev()
        .take(100)
        .rev()
        .filter_map(|m| m.content.as_deref())
        .collect();
    assert_eq!(
        newest, expected,
        "the restarted server lists the same history"
    );
    db.close().await.ok();
}
