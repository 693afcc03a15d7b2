//! The chat list runs a fixed number of SQL statements however many chats it shows: members,
//! last messages, unread counts and roles are batched, not fetched per chat.
use std::time::Duration;

use serde_json::json;

use crate::fixtures::{create_group, open_direct, send};
use crate::helpers::{TestApp, TestUser, spawn_app_with};

const LIST: &str = "{ chats(first: 50) { nodes { id title kind members { nodes { user { username displayName } role } } lastMessage { content sender { username } } unreadCount unreadMentionCount memberCount myRole archived } } }";

/// Background sweeps far apart (playback auto-advance, voice seats, the Web Push worker), so none
/// of their statements land inside a request's count.
pub(crate) fn quiet_background(config: &mut goftgu::config::Config) {
    config.playback_tick_ms = 3_600_000;
    config.poll_tick_ms = 3_600_000;
    config.voice.grace_seconds = 3_600;
    config.push.tick_ms = 3_600_000;
}

/// The statement counter once nothing has run for a moment (nothing left over from the last
/// request can land inside the measurement).
pub(crate) async fn quiet_count(app: &TestApp) -> u64 {
    let mut last = app.state.sql_statement_count();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = app.state.sql_statement_count();
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Statements run by one chat-list request, after checking it listed `expected` chats in full.
async fn statements_for_list(app: &TestApp, me: &TestUser, expected: usize) -> u64 {
    let before = quiet_count(app).await;
    let data = app.gql_ok(Some(&me.token), LIST, json!({})).await;
    let after = quiet_count(app).await;
    let nodes = data["chats"]["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), expected);
    for node in nodes {
        let members = node["members"]["nodes"].as_array().unwrap();
        assert_eq!(
            members.len() as i64,
            node["memberCount"].as_i64().unwrap(),
            "{node}"
        );
        assert!(
            members
                .iter()
                .any(|m| m["user"]["username"] == me.username.as_str()),
            "{node}"
        );
        assert!(
            members.iter().all(|m| m["user"]["displayName"].is_string()),
            "{node}"
        );
        assert!(
            node["lastMessage"]["sender"]["username"].is_string(),
            "{node}"
        );
        assert!(node["unreadCount"].as_i64().unwrap() >= 1, "{node}");
        assert_eq!(node["unreadMentionCount"], 1, "{node}");
        assert_eq!(node["archived"], false);
    }
    after - before
}

/// Adds chats `range` for `me`: every third a direct chat with a new user, the others groups
/// with one or two of `friends`; in each, a friend writes, I answer, the friend writes again and
/// mentions me (so every chat has at least one unread message, one of them a mention).
async fn add_chats(
    app: &TestApp,
    me: &TestUser,
    friends: &[TestUser],
    range: std::ops::Range<usize>,
) {
    for i in range {
        let (chat, writer) = if i % 3 == 0 {
            let partner = app.register(&format!("partner{i}")).await;
            (
                open_direct(app, &me.token, &partner.username).await,
                partner,
            )
        } else {
            let first = &friends[i % friends.len()];
            let second = &friends[(i + 1) % friends.len()];
            let members: Vec<&str> = if i % 2 == 0 {
                vec![&first.username, &second.username]
            } else {
                vec![&first.username]
            };
            let chat = create_group(app, &me.token, &format!("group {i}"), &members).await;
            (chat, first.clone())
        };
        send(app, &writer.token, &chat, &format!("hello {i}")).await;
        send(app, &me.token, &chat, &format!("answer {i}")).await;
        let mention = format!("unread {i} @{}", me.username);
        send(app, &writer.token, &chat, &mention).await;
    }
}

#[tokio::test]
async fn the_chat_list_does_not_query_per_chat() {
    // Fifty chats written in a few seconds: more messages than one person's burst.
    // Fifty chats, most of them groups with members, in a few seconds: above a person's pace.
    let (app, _dir) = spawn_app_with(|c| {
        c.limits.send_burst = 1000;
        c.limits.invites_burst = 1000;
        quiet_background(c);
    })
    .await;
    let me = app.register("lister").await;
    let mut friends = Vec::new();
    for name in ["friend_a", "friend_b", "friend_c", "friend_d"] {
        friends.push(app.register(name).await);
    }
    add_chats(&app, &me, &friends, 0..5).await;
    let five = statements_for_list(&app, &me, 5).await;
    add_chats(&app, &me, &friends, 5..50).await;
    let fifty = statements_for_list(&app, &me, 50).await;
    eprintln!("chat list SQL statements: {five} for 5 chats, {fifty} for 50 chats");
    assert!(five > 0, "the counter counts");
    assert_eq!(
        five, fifty,
        "the chat list must not run statements per chat ({five} for 5 chats, {fifty} for 50)"
    );
}

/// The benchmark's chat list (benches/harness/chat_list.rs), word for word.
const BENCH_CHAT_LIST: &str = "query { chats(first: 50) { totalCount nodes { id title memberCount unreadCount lastActivityAt lastMessage { id content createdAt sender { id username } } members(first: 5) { nodes { role user { id username } } } } pageInfo { hasNextPage endCursor } } }";

/// The benchmark's history page, forward by cursor.
const BENCH_HISTORY: &str = "query($chat: ID!, $after: String) { messages(chatId: $chat, first: 50, after: $after) { nodes { id kind content createdAt sender { id username } } pageInfo { hasNextPage endCursor } } }";

/// The benchmark's history page by offset.
const BENCH_HISTORY_OFFSET: &str = "query($chat: ID!, $skip: Int) { messages(chatId: $chat, skip: $skip, limit: 50) { nodes { id kind content createdAt sender { id username } } pageInfo { hasNextPage endCursor } } }";

/// Any page of history, with senders, both ends and cursors.
const HISTORY_PAGE: &str = "query($chat: ID!, $first: Int, $after: String, $last: Int, $before: String, $limit: Int, $skip: Int) { messages(chatId: $chat, first: $first, after: $after, last: $last, before: $before, limit: $limit, skip: $skip) { nodes { id kind content createdAt sender { id username } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }";

/// The statements `query` costs, and its data.
async fn statements_for(
    app: &TestApp,
    user: &TestUser,
    query: &str,
    variables: serde_json::Value,
) -> (u64, serde_json::Value) {
    let before = quiet_count(app).await;
    let data = app.gql_ok(Some(&user.token), query, variables).await;
    let after = quiet_count(app).await;
    (after - before, data)
}

/// Budgets set by issue 16.
const CHAT_LIST_BUDGET: u64 = 6;
const HISTORY_BUDGET: u64 = 2;

fn quiet_and_unlimited(c: &mut goftgu::config::Config) {
    c.limits.send_burst = 10_000;
    c.limits.invites_burst = 1000;
    quiet_background(c);
}

/// Checks one chat-list node of the benchmark query against what `add_chats` wrote.
fn check_bench_node(node: &serde_json::Value, me: &TestUser) {
    let members = node["members"]["nodes"].as_array().unwrap();
    let count = node["memberCount"].as_u64().unwrap();
    assert_eq!(members.len() as u64, count.min(5), "{node}");
    assert!(
        members
            .iter()
            .any(|m| m["user"]["username"] == me.username.as_str()),
        "{node}"
    );
    assert!(members.iter().all(|m| m["role"].is_string()), "{node}");
    let last = &node["lastMessage"];
    assert!(
        last["content"]
            .as_str()
            .is_some_and(|c| c.starts_with("unread ")),
        "{node}"
    );
    assert!(last["sender"]["username"].is_string(), "{node}");
    assert_eq!(node["unreadCount"], 1, "{node}");
    assert!(node["title"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test]
async fn the_bench_chat_list_costs_at_most_six_statements_for_5_and_50_chats() {
    let (app, _dir) = spawn_app_with(quiet_and_unlimited).await;
    let me = app.register("lister").await;
    let mut friends = Vec::new();
    for name in ["friend_a", "friend_b", "friend_c", "friend_d"] {
        friends.push(app.register(name).await);
    }
    add_chats(&app, &me, &friends, 0..5).await;
    let (five, data) = statements_for(&app, &me, BENCH_CHAT_LIST, json!({})).await;
    assert_eq!(data["chats"]["totalCount"], 5);
    assert_eq!(data["chats"]["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(data["chats"]["pageInfo"]["hasNextPage"], false);
    for node in data["chats"]["nodes"].as_array().unwrap() {
        check_bench_node(node, &me);
    }
    add_chats(&app, &me, &friends, 5..52).await;
    let (fifty, data) = statements_for(&app, &me, BENCH_CHAT_LIST, json!({})).await;
    assert_eq!(data["chats"]["totalCount"], 52);
    assert_eq!(data["chats"]["nodes"].as_array().unwrap().len(), 50);
    assert_eq!(data["chats"]["pageInfo"]["hasNextPage"], true);
    for node in data["chats"]["nodes"].as_array().unwrap() {
        check_bench_node(node, &me);
    }
    eprintln!("bench chat list: {five} statements for 5 chats, {fifty} for 50");
    assert_eq!(five, fifty, "statements must not grow with the page");
    assert!(
        fifty <= CHAT_LIST_BUDGET,
        "the chat list took {fifty} statements (budget {CHAT_LIST_BUDGET})"
    );

    // Unread mentions are counted in the unread counts' statement.
    let mentions = BENCH_CHAT_LIST.replacen("unreadCount", "unreadCount unreadMentionCount", 1);
    let (with_mentions, data) = statements_for(&app, &me, &mentions, json!({})).await;
    assert_eq!(
        with_mentions, fifty,
        "unreadMentionCount costs no statement of its own"
    );
    assert_eq!(data["chats"]["nodes"][0]["unreadMentionCount"], 1);

    // totalCount costs exactly one statement, and only when selected.
    let without = BENCH_CHAT_LIST.replacen("totalCount ", "", 1);
    let (fewer, data) = statements_for(&app, &me, &without, json!({})).await;
    assert!(data["chats"].get("totalCount").is_none());
    assert_eq!(fewer + 1, fifty, "totalCount must cost one statement");
    let (only_count, data) =
        statements_for(&app, &me, "{ chats(first: 50) { totalCount } }", json!({})).await;
    assert_eq!(data["chats"]["totalCount"], 52);
    assert!(only_count <= 2, "{only_count}");
}

/// A group of `me` and `friend` with `n` messages, alternating senders; its id.
async fn chat_with_history(app: &TestApp, me: &TestUser, friend: &TestUser, n: usize) -> String {
    let chat = create_group(app, &me.token, "history", &[&friend.username]).await;
    for i in 0..n {
        let writer = if i.is_multiple_of(2) { friend } else { me };
        send(app, &writer.token, &chat, &format!("m{i}")).await;
    }
    chat
}

fn contents_of(data: &serde_json::Value) -> Vec<String> {
    data["messages"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["content"].as_str().unwrap().to_owned())
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m{i}")).collect()
}

#[tokio::test]
async fn a_history_page_costs_at_most_two_statements_whatever_its_size_and_direction() {
    let (app, _dir) = spawn_app_with(quiet_and_unlimited).await;
    let me = app.register("reader").await;
    let friend = app.register("writer").await;
    let chat = chat_with_history(&app, &me, &friend, 130).await;
    // m{i} was written by the friend for even i, by me for odd i.
    let senders = |data: &serde_json::Value| {
        for node in data["messages"]["nodes"].as_array().unwrap() {
            let i: usize = node["content"].as_str().unwrap()[1..].parse().unwrap();
            let writer = if i.is_multiple_of(2) { &friend } else { &me };
            assert_eq!(
                node["sender"]["username"],
                writer.username.as_str(),
                "{node}"
            );
            assert_eq!(node["sender"]["id"], writer.id.as_str(), "{node}");
            assert_eq!(node["kind"], "TEXT");
        }
    };

    // The benchmark's queries. The first read by a member also marks delivery (a write);
    // a repeated page writes nothing.
    let mut counts = Vec::new();
    for round in 0..2 {
        let (n, data) = statements_for(&app, &me, BENCH_HISTORY, json!({ "chat": chat })).await;
        assert_eq!(contents_of(&data), expected(0..50));
        assert_eq!(data["messages"]["pageInfo"]["hasNextPage"], true);
        senders(&data);
        counts.push(("bench first page", round, n));
        let cursor = data["messages"]["pageInfo"]["endCursor"].clone();
        let (n, data) = statements_for(
            &app,
            &me,
            BENCH_HISTORY,
            json!({ "chat": chat, "after": cursor }),
        )
        .await;
        assert_eq!(contents_of(&data), expected(50..100));
        senders(&data);
        counts.push(("bench after", round, n));
        let (n, data) = statements_for(
            &app,
            &me,
            BENCH_HISTORY_OFFSET,
            json!({ "chat": chat, "skip": 50 }),
        )
        .await;
        assert_eq!(contents_of(&data), expected(30..80));
        assert_eq!(data["messages"]["pageInfo"]["hasNextPage"], true);
        senders(&data);
        counts.push(("bench offset", round, n));
    }

    // Any size, any direction.
    let page = |vars: serde_json::Value| {
        let mut vars = vars;
        vars["chat"] = json!(chat);
        vars
    };
    for (name, vars, want) in [
        ("first 10", json!({ "first": 10 }), expected(0..10)),
        ("first 100", json!({ "first": 100 }), expected(0..100)),
        ("last 10", json!({ "last": 10 }), expected(120..130)),
        ("last 100", json!({ "last": 100 }), expected(30..130)),
        ("limit 10", json!({ "limit": 10 }), expected(120..130)),
        (
            "skip 100 limit 100",
            json!({ "skip": 100, "limit": 100 }),
            expected(0..30),
        ),
        (
            "skip past the end",
            json!({ "skip": 500, "limit": 10 }),
            vec![],
        ),
    ] {
        let (n, data) = statements_for(&app, &me, HISTORY_PAGE, page(vars)).await;
        assert_eq!(contents_of(&data), want, "{name}");
        senders(&data);
        counts.push((name, 0, n));
    }
    let (_, data) = statements_for(&app, &me, HISTORY_PAGE, page(json!({ "first": 10 }))).await;
    let after = data["messages"]["pageInfo"]["endCursor"].clone();
    let (n, data) = statements_for(
        &app,
        &me,
        HISTORY_PAGE,
        page(json!({ "first": 100, "after": after })),
    )
    .await;
    assert_eq!(contents_of(&data), expected(10..110));
    counts.push(("first 100 after", 0, n));
    let (_, data) = statements_for(&app, &me, HISTORY_PAGE, page(json!({ "last": 10 }))).await;
    let before = data["messages"]["pageInfo"]["startCursor"].clone();
    let (n, data) = statements_for(
        &app,
        &me,
        HISTORY_PAGE,
        page(json!({ "last": 100, "before": before })),
    )
    .await;
    assert_eq!(contents_of(&data), expected(20..120));
    counts.push(("last 100 before", 0, n));

    // A friend's first look at the newest page (a delivery write) stays within budget too.
    let (n, data) = statements_for(&app, &friend, HISTORY_PAGE, page(json!({ "last": 50 }))).await;
    assert_eq!(contents_of(&data), expected(80..130));
    counts.push(("first read by another member", 0, n));

    eprintln!("history statements: {counts:?}");
    for (name, round, n) in counts {
        assert!(
            n <= HISTORY_BUDGET,
            "{name} (round {round}) took {n} statements (budget {HISTORY_BUDGET})"
        );
    }
}

#[tokio::test]
async fn page_ends_are_right_at_both_ends_of_a_chat() {
    let (app, _dir) = spawn_app_with(quiet_and_unlimited).await;
    let me = app.register("reader").await;
    let friend = app.register("writer").await;
    let empty = create_group(&app, &me.token, "empty", &[&friend.username]).await;
    let chat = chat_with_history(&app, &me, &friend, 25).await;
    let page = |chat: &str, vars: serde_json::Value| {
        let mut vars = vars;
        vars["chat"] = json!(chat);
        let query = HISTORY_PAGE;
        let app = &app;
        let me = &me;
        async move { app.gql_ok(Some(&me.token), query, vars).await }
    };
    let ends = |data: &serde_json::Value| {
        let info = &data["messages"]["pageInfo"];
        (
            info["hasPreviousPage"].as_bool().unwrap(),
            info["hasNextPage"].as_bool().unwrap(),
        )
    };
    let cursor =
        |data: &serde_json::Value, which: &str| data["messages"]["pageInfo"][which].clone();

    // The empty chat: nothing either side, whichever way it is paged.
    for vars in [
        json!({ "first": 10 }),
        json!({ "last": 10 }),
        json!({ "limit": 10 }),
        json!({ "skip": 5, "limit": 10 }),
    ] {
        let data = page(&empty, vars.clone()).await;
        assert_eq!(contents_of(&data), Vec::<String>::new(), "{vars}");
        assert_eq!(ends(&data), (false, false), "{vars}");
    }

    // Forward: first page, middle, last (short) page, and a last page that is exactly full.
    let first = page(&chat, json!({ "first": 10 })).await;
    assert_eq!(contents_of(&first), expected(0..10));
    assert_eq!(ends(&first), (false, true));
    let middle = page(
        &chat,
        json!({ "first": 10, "after": cursor(&first, "endCursor") }),
    )
    .await;
    assert_eq!(contents_of(&middle), expected(10..20));
    assert_eq!(ends(&middle), (true, true));
    let last = page(
        &chat,
        json!({ "first": 10, "after": cursor(&middle, "endCursor") }),
    )
    .await;
    assert_eq!(contents_of(&last), expected(20..25));
    assert_eq!(ends(&last), (true, false));
    let exact = page(
        &chat,
        json!({ "first": 5, "after": cursor(&middle, "endCursor") }),
    )
    .await;
    assert_eq!(contents_of(&exact), expected(20..25));
    assert_eq!(ends(&exact), (true, false));
    let whole = page(&chat, json!({ "first": 25 })).await;
    assert_eq!(ends(&whole), (false, false));

    // Backward: newest page, middle, oldest (short) page.
    let newest = page(&chat, json!({ "last": 10 })).await;
    assert_eq!(contents_of(&newest), expected(15..25));
    assert_eq!(ends(&newest), (true, false));
    let middle = page(
        &chat,
        json!({ "last": 10, "before": cursor(&newest, "startCursor") }),
    )
    .await;
    assert_eq!(contents_of(&middle), expected(5..15));
    assert_eq!(ends(&middle), (true, true));
    let oldest = page(
        &chat,
        json!({ "last": 10, "before": cursor(&middle, "startCursor") }),
    )
    .await;
    assert_eq!(contents_of(&oldest), expected(0..5));
    assert_eq!(ends(&oldest), (false, true));
    let whole = page(&chat, json!({ "last": 25 })).await;
    assert_eq!(ends(&whole), (false, false));

    // By offset from the newest.
    let newest = page(&chat, json!({ "limit": 10 })).await;
    assert_eq!(contents_of(&newest), expected(15..25));
    assert_eq!(ends(&newest), (true, false));
    let middle = page(&chat, json!({ "skip": 10, "limit": 10 })).await;
    assert_eq!(contents_of(&middle), expected(5..15));
    assert_eq!(ends(&middle), (true, true));
    let oldest = page(&chat, json!({ "skip": 20, "limit": 10 })).await;
    assert_eq!(contents_of(&oldest), expected(0..5));
    assert_eq!(ends(&oldest), (false, true));
    let beyond = page(&chat, json!({ "skip": 30, "limit": 10 })).await;
    assert_eq!(contents_of(&beyond), Vec::<String>::new());
    assert_eq!(ends(&beyond), (false, true));
}
