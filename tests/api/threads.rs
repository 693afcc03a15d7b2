//! Threads: replies stay out of the chat's main timeline, its last message and unread count; the
//! root shows its reply count, last reply time and latest repliers; `thread(rootId)` pages
//! replies with message cursors; replies arrive live with their root id; authors and repliers
//! follow, and each follower's unread replies count from their own marker; `threads(chatId)`
//! lists threads by latest reply.
use serde_json::{Value, json};

use crate::fixtures::{chat, create_group, delete, send, strings};
use crate::helpers::{TestApp, error_code, spawn_app};
use crate::live::{LEGACY, Socket};

async fn reply(app: &TestApp, token: &str, chat_id: &str, root: &str, content: &str) -> Value {
    app.gql(
        Some(token),
        "mutation($c: ID!, $r: ID!, $t: String!) {
           sendMessage(input: {chatId: $c, threadRootId: $r, content: $t}) { id threadRootId } }",
        json!({ "c": chat_id, "r": root, "t": content }),
    )
    .await
}

async fn replied(app: &TestApp, token: &str, chat_id: &str, root: &str, content: &str) -> String {
    let answer = reply(app, token, chat_id, root, content).await;
    let id = answer["data"]["sendMessage"]["id"].as_str();
    id.unwrap_or_else(|| panic!("{answer}")).to_string()
}

async fn timeline(app: &TestApp, token: &str, chat_id: &str) -> Value {
    app.gql_ok(
        Some(token),
        "query($c: ID!) { messages(chatId: $c, first: 50) { totalCount nodes {
           content replyCount lastReplyAt lastRepliers { username } } } }",
        json!({ "c": chat_id }),
    )
    .await["messages"]
        .clone()
}

async fn thread_page(
    app: &TestApp,
    token: &str,
    root: &str,
    first: i32,
    after: Option<&str>,
) -> Value {
    app.gql_ok(
        Some(token),
        "query($r: ID!, $first: Int!, $after: String) { thread(rootId: $r, first: $first, after: $after) {
           totalCount nodes { content threadRootId } pageInfo { hasNextPage endCursor } } }",
        json!({ "r": root, "first": first, "after": after }),
    )
    .await["thread"]
        .clone()
}

async fn threads_of(app: &TestApp, token: &str, chat_id: &str) -> Value {
    app.gql_ok(
        Some(token),
        "query($c: ID!) { threads(chatId: $c) { root { content } replyCount isFollowing unreadCount } }",
        json!({ "c": chat_id }),
    )
    .await["threads"]
        .clone()
}

#[tokio::test]
async fn replies_stay_in_their_thread_page_by_cursor_and_arrive_with_their_root() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let eve = app.register("eve").await;
    let group = create_group(&app, &ana.token, "club", &["ben", "cyd"]).await;
    let root = send(&app, &ana.token, &group, "shall we meet?").await;
    let mut live = Socket::open(&app, &cyd.token, LEGACY).await;
    let events = "subscription($c: ID!) { chatEvents(chatId: $c) {
        ... on MessageCreated { message { content threadRootId } } } }";
    live.subscribe("c", events, json!({ "c": group })).await;

    let first = replied(&app, &ben.token, &group, &root, "yes, tuesday").await;
    let event = live.event("c").await;
    assert_eq!(
        event["message"],
        json!({ "content": "yes, tuesday", "threadRootId": root })
    );
    for (user, text) in [
        (&cyd, "or wednesday"),
        (&ben, "tuesday is better"),
        (&ana, "tuesday then"),
    ] {
        replied(&app, &user.token, &group, &root, text).await;
    }
    // The chat's last message is its main timeline's: replies in a thread do not take its place.
    let last = |chat: Value| chat["lastMessage"]["content"].clone();
    let selection = "lastMessage { content }";
    assert_eq!(
        last(chat(&app, &cyd.token, &group, selection).await),
        "shall we meet?"
    );
    send(&app, &ben.token, &group, "in the main timeline").await;
    assert_eq!(
        last(chat(&app, &cyd.token, &group, selection).await),
        "in the main timeline"
    );

    // The main timeline shows the root with its thread's figures, not the replies.
    let main = timeline(&app, &cyd.token, &group).await;
    assert_eq!(
        strings(&main["nodes"], "content"),
        ["shall we meet?", "in the main timeline"]
    );
    assert_eq!(main["totalCount"], 2);
    let shown = &main["nodes"][0];
    assert_eq!(shown["replyCount"], 4);
    assert!(shown["lastReplyAt"].is_string());
    assert_eq!(
        strings(&shown["lastRepliers"], "username"),
        ["ana", "ben", "cyd"],
        "most recent first"
    );
    // Unread in the chat: the main timeline only.
    assert_eq!(
        chat(&app, &cyd.token, &group, "unreadCount").await["unreadCount"],
        2
    );

    // The thread pages with message cursors, oldest first.
    let page = thread_page(&app, &cyd.token, &root, 3, None).await;
    assert_eq!(
        strings(&page["nodes"], "content"),
        ["yes, tuesday", "or wednesday", "tuesday is better"]
    );
    assert_eq!(page["totalCount"], 4);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    let rest = thread_page(
        &app,
        &cyd.token,
        &root,
        3,
        page["pageInfo"]["endCursor"].as_str(),
    )
    .await;
    assert_eq!(strings(&rest["nodes"], "content"), ["tuesday then"]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);

    // A deleted reply stays in the thread (its text hidden) but is not counted.
    delete(&app, &ben.token, &first).await;
    assert_eq!(
        timeline(&app, &ana.token, &group).await["nodes"][0]["replyCount"],
        3
    );

    // Refused: a root of another chat, a reply as root, an outsider reading.
    let other = create_group(&app, &ana.token, "other", &["ben"]).await;
    let elsewhere = send(&app, &ana.token, &other, "elsewhere").await;
    for bad_root in [&elsewhere, &first] {
        let refused = reply(&app, &ben.token, &group, bad_root, "no").await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{refused}");
    }
    let outsider = app
        .gql(
            Some(&eve.token),
            "query($r: ID!) { thread(rootId: $r) { totalCount } }",
            json!({ "r": root }),
        )
        .await;
    assert_eq!(error_code(&outsider), "NOT_FOUND", "{outsider}");
    live.close().await;
}

#[tokio::test]
async fn followers_count_unread_replies_from_their_own_marker() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let dan = app.register("dan").await;
    let group = create_group(&app, &ana.token, "club", &["ben", "cyd", "dan"]).await;
    let quiet = send(&app, &ana.token, &group, "a quiet root").await;
    let root = send(&app, &ana.token, &group, "plans?").await;
    replied(&app, &ben.token, &group, &root, "one").await;
    replied(&app, &cyd.token, &group, &root, "two").await;
    replied(&app, &ben.token, &group, &quiet, "late answer").await;
    replied(&app, &ben.token, &group, &root, "three").await;

    // ana (author) follows with 3 unread; ben (replier) read up to his own last; dan does not
    // follow. The list is by latest reply.
    let anas = threads_of(&app, &ana.token, &group).await;
    assert_eq!(
        anas,
        json!([
            { "root": { "content": "plans?" }, "replyCount": 3, "isFollowing": true, "unreadCount": 3 },
            { "root": { "content": "a quiet root" }, "replyCount": 1, "isFollowing": true, "unreadCount": 1 }
        ])
    );
    assert_eq!(
        threads_of(&app, &ben.token, &group).await[0]["unreadCount"],
        0
    );
    assert_eq!(
        threads_of(&app, &cyd.token, &group).await[0]["unreadCount"],
        1
    );
    let dans = threads_of(&app, &dan.token, &group).await;
    assert_eq!(dans[0]["isFollowing"], false);
    assert_eq!(dans[0]["unreadCount"], 0);

    let read = app
        .gql_ok(
            Some(&ana.token),
            "mutation($r: ID!) { markThreadRead(rootId: $r) { unreadCount isFollowing } }",
            json!({ "r": root }),
        )
        .await;
    assert_eq!(
        read["markThreadRead"],
        json!({ "unreadCount": 0, "isFollowing": true })
    );

    // dan follows from now: only later replies are unread.
    let followed = app
        .gql_ok(
            Some(&dan.token),
            "mutation($r: ID!) { followThread(rootId: $r) { isFollowing unreadCount } }",
            json!({ "r": root }),
        )
        .await;
    assert_eq!(
        followed["followThread"],
        json!({ "isFollowing": true, "unreadCount": 0 })
    );
    replied(&app, &cyd.token, &group, &root, "four").await;
    assert_eq!(
        threads_of(&app, &dan.token, &group).await[0]["unreadCount"],
        1
    );
    assert_eq!(
        threads_of(&app, &ana.token, &group).await[0]["unreadCount"],
        1
    );
    let unfollow = "mutation($r: ID!) { unfollowThread(rootId: $r) }";
    let answer = app
        .gql_ok(Some(&dan.token), unfollow, json!({ "r": root }))
        .await;
    assert_eq!(answer["unfollowThread"], true);
    let dans = threads_of(&app, &dan.token, &group).await;
    assert_eq!(
        (&dans[0]["isFollowing"], &dans[0]["unreadCount"]),
        (&json!(false), &json!(0))
    );
}

/// The thread index holds thread replies only, so a planner cannot pick it for the chat list's
/// unread counts (`thread_root_id IS NULL` beside one `chat_id`/`seq` range per chat): as a full
/// index it was picked on SQLite, and the chat list scanned every message of every chat.
#[tokio::test]
async fn the_chat_lists_unread_counts_never_scan_the_thread_index() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
    let (app, _dir) = spawn_app().await;
    // One connection for both statements: the definition is read (which reloads a schema that
    // changed since the connection last looked), then explained. `EXPLAIN` alone never checks
    // the schema, so on a pooled connection opened before the migrations ran it plans against
    // the index as it was before migration 000019.
    let db = &app.state.db.begin().await.unwrap();
    let backend = db.get_database_backend();
    let definition = match backend {
        DbBackend::Postgres => {
            "SELECT indexdef AS d FROM pg_indexes WHERE indexname = 'idx_messages_thread_seq'"
        }
        _ => "SELECT sql AS d FROM sqlite_master WHERE name = 'idx_messages_thread_seq'",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, definition))
        .await
        .unwrap()
        .expect("the thread index exists");
    let definition: String = row.try_get("", "d").unwrap();
    assert!(
        definition
            .to_lowercase()
            .contains("where (thread_root_id is not null)")
            || definition
                .to_lowercase()
                .contains("where thread_root_id is not null"),
        "{definition}"
    );
    if backend == DbBackend::Sqlite {
        let ranges = (1..=50)
            .map(|i| format!("(m.chat_id = 'c{i}' AND m.seq > {i})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let plan = format!(
            "EXPLAIN QUERY PLAN SELECT m.chat_id, COUNT(m.id) FROM messages m \
             WHERE m.deleted_at IS NULL AND m.thread_root_id IS NULL AND ({ranges}) \
             GROUP BY m.chat_id"
        );
        let rows = db
            .query_all_raw(Statement::from_string(backend, plan))
            .await
            .unwrap();
        let steps: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect();
        assert!(
            steps.iter().all(|s| !s.contains("idx_messages_thread_seq")),
            "{steps:?}"
        );
        assert!(
            steps.iter().any(|s| s.contains("idx_messages_chat_seq")),
            "{steps:?}"
        );
    }
}
