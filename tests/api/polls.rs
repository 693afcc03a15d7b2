//! Polls: posted as a message of kind POLL; members vote (one option, or several in a multiple
//! poll), change and take back their vote, and see results live; anonymous polls hide voters;
//! the creator closes a poll, or it closes by itself at `closesAt`; closed polls take no votes.
use serde_json::{Value, json};

use crate::fixtures::create_group;
use crate::helpers::{TestApp, error_code, spawn_app};
use crate::live::{LEGACY, Socket};

const POLL: &str = "id isClosed multiple anonymous totalVoters myVotes
    options { position text voteCount voters { username } }";

async fn create(app: &TestApp, token: &str, input: Value) -> Value {
    let query = format!(
        "mutation($input: CreatePollInput!) {{ createPoll(input: $input) {{ id kind content poll {{ {POLL} }} }} }}"
    );
    app.gql(Some(token), &query, json!({ "input": input }))
        .await
}

async fn vote(app: &TestApp, token: &str, poll: &str, options: &[i32]) -> Value {
    let query = format!(
        "mutation($p: ID!, $o: [Int!]!) {{ votePoll(pollId: $p, options: $o) {{ {POLL} }} }}"
    );
    app.gql(Some(token), &query, json!({ "p": poll, "o": options }))
        .await
}

fn counts(poll: &Value) -> Vec<i64> {
    poll["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["voteCount"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn members_vote_change_and_take_back_their_votes_and_see_results_live() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyd = app.register("cyd").await;
    let eve = app.register("eve").await;
    let group = create_group(&app, &ana.token, "club", &["ben", "cyd"]).await;
    let mut live = Socket::open(&app, &cyd.token, LEGACY).await;
    let events = "subscription($c: ID!) { chatEvents(chatId: $c) { __typename
        ... on MessageCreated { message { kind content poll { options { text } } } }
        ... on PollUpdated { poll { isClosed totalVoters options { voteCount voters { username } } } } } }";
    live.subscribe("c", events, json!({ "c": group })).await;

    let created = create(
        &app,
        &ana.token,
        json!({ "chatId": group, "question": "Lunch?", "options": ["pizza", "sushi", "salad"] }),
    )
    .await;
    let message = &created["data"]["createPoll"];
    assert_eq!(message["kind"], "POLL", "{created}");
    assert_eq!(message["content"], "Lunch?");
    let poll = message["poll"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        poll,
        message["id"].as_str().unwrap(),
        "a poll is its message"
    );
    assert_eq!(counts(&message["poll"]), [0, 0, 0]);
    let announced = live.event("c").await;
    assert_eq!(announced["message"]["kind"], "POLL");
    assert_eq!(announced["message"]["poll"]["options"][1]["text"], "sushi");

    let answer = vote(&app, &ben.token, &poll, &[1]).await;
    assert_eq!(
        answer["data"]["votePoll"]["myVotes"],
        json!([1]),
        "{answer}"
    );
    let update = live.event("c").await;
    assert_eq!(update["__typename"], "PollUpdated");
    assert_eq!(counts(&update["poll"]), [0, 1, 0]);
    assert_eq!(update["poll"]["options"][1]["voters"][0]["username"], "ben");

    // Voting again replaces the vote; a single-choice poll takes one option.
    vote(&app, &ben.token, &poll, &[2]).await;
    assert_eq!(counts(&live.event("c").await["poll"]), [0, 0, 1]);
    let two = vote(&app, &ben.token, &poll, &[0, 1]).await;
    assert_eq!(error_code(&two), "BAD_USER_INPUT", "{two}");
    let outside = vote(&app, &ben.token, &poll, &[3]).await;
    assert_eq!(error_code(&outside), "BAD_USER_INPUT", "{outside}");
    let stranger = vote(&app, &eve.token, &poll, &[0]).await;
    assert_eq!(error_code(&stranger), "NOT_FOUND", "{stranger}");

    vote(&app, &cyd.token, &poll, &[2]).await;
    let both = live.event("c").await;
    assert_eq!(counts(&both["poll"]), [0, 0, 2]);
    assert_eq!(both["poll"]["totalVoters"], 2);
    let retract = "mutation($p: ID!) { retractVote(pollId: $p) { myVotes } }";
    let taken = app
        .gql_ok(Some(&ben.token), retract, json!({ "p": poll }))
        .await;
    assert_eq!(taken["retractVote"]["myVotes"], json!([]));
    assert_eq!(counts(&live.event("c").await["poll"]), [0, 0, 1]);

    // Only the creator closes it; then no votes are taken.
    let close = "mutation($p: ID!) { closePoll(pollId: $p) { isClosed } }";
    let refused = app.gql(Some(&ben.token), close, json!({ "p": poll })).await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    let closed = app
        .gql_ok(Some(&ana.token), close, json!({ "p": poll }))
        .await;
    assert_eq!(closed["closePoll"]["isClosed"], true);
    assert_eq!(live.event("c").await["poll"]["isClosed"], true);
    let late = vote(&app, &ben.token, &poll, &[0]).await;
    assert_eq!(error_code(&late), "BAD_USER_INPUT", "{late}");
    live.close().await;
}

#[tokio::test]
async fn multiple_anonymous_polls_hide_voters_and_close_by_themselves() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let group = create_group(&app, &ana.token, "club", &["ben"]).await;
    let closes_at = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let created = create(
        &app,
        &ana.token,
        json!({ "chatId": group, "question": "Days?", "options": ["mon", "tue", "wed"],
                "multiple": true, "anonymous": true, "closesAt": closes_at }),
    )
    .await;
    let poll = created["data"]["createPoll"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut live = Socket::open(&app, &ben.token, LEGACY).await;
    let events = "subscription($c: ID!) { chatEvents(chatId: $c) {
        ... on PollUpdated { poll { isClosed options { voteCount voters { username } } } } } }";
    live.subscribe("c", events, json!({ "c": group })).await;

    let answer = vote(&app, &ben.token, &poll, &[0, 2]).await;
    let voted = &answer["data"]["votePoll"];
    assert_eq!(voted["myVotes"], json!([0, 2]), "{answer}");
    assert_eq!(counts(voted), [1, 0, 1]);
    assert!(
        voted["options"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["voters"] == json!([])),
        "anonymous: {voted}"
    );
    let update = live.event("c").await;
    assert_eq!(update["poll"]["isClosed"], false);
    // Closing by itself is announced too.
    let closed = live.event("c").await;
    assert_eq!(closed["poll"]["isClosed"], true, "{closed}");
    let late = vote(&app, &ben.token, &poll, &[1]).await;
    assert_eq!(error_code(&late), "BAD_USER_INPUT", "{late}");

    for bad in [
        json!({ "chatId": group, "question": "One?", "options": ["only"] }),
        json!({ "chatId": group, "question": "Same?", "options": ["a", "A"] }),
        json!({ "chatId": group, "question": " ", "options": ["a", "b"] }),
        json!({ "chatId": group, "question": "Past?", "options": ["a", "b"], "closesAt": "2020-01-01T00:00:00Z" }),
    ] {
        let refused = create(&app, &ana.token, bad.clone()).await;
        assert_eq!(error_code(&refused), "BAD_USER_INPUT", "{bad}: {refused}");
    }
    let edit = app
        .gql(
            Some(&ana.token),
            "mutation($id: ID!) { editMessage(id: $id, content: \"x\") { id } }",
            json!({ "id": poll }),
        )
        .await;
    assert_eq!(error_code(&edit), "BAD_USER_INPUT", "{edit}");
    live.close().await;
}
