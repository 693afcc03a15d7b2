//! Groups end to end: creation (owner role, unknown members), update, adding and removing
//! members, admins, and the ownership hand-over when the owner leaves.
use serde_json::{Value, json};

use crate::fixtures::{
    add_members, assert_bad_input, chat, create_group, id, member_roles, my_chat_ids, open_direct,
    pairs, promote, tick,
};
use crate::helpers::{TestApp, error_code, error_message, spawn_app};

const ADMIN_OP: &str = "mutation($chat: ID!, $user: ID!) { OP(chatId: $chat, userId: $user) }";

/// Runs removeMember / promoteAdmin / demoteAdmin on `user_id` as `token`'s user.
async fn admin_op(app: &TestApp, token: &str, op: &str, chat_id: &str, user_id: &str) -> Value {
    app.gql(
        Some(token),
        &ADMIN_OP.replace("OP", op),
        json!({ "chat": chat_id, "user": user_id }),
    )
    .await
}

#[tokio::test]
async fn create_group_makes_the_caller_owner() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    app.register("cyrus").await;
    let dana = app.register("dana").await;
    let data = app
        .gql_ok(
            Some(&ana.token),
            "mutation($members: [String!]!) { createGroup(input: {name: \"Team\", description: \"weekly sync\", members: $members}) { id kind name title description isPrivate memberCount myRole owner { id } members { nodes { user { username } role } } } }",
            json!({ "members": ["ben", "cyrus@example.com", dana.id] }),
        )
        .await;
    let group = &data["createGroup"];
    assert_eq!(group["kind"], "GROUP");
    assert_eq!(group["name"], "Team");
    assert_eq!(group["title"], "Team");
    assert_eq!(group["description"], "weekly sync");
    assert_eq!(group["isPrivate"], true);
    assert_eq!(group["memberCount"], 4);
    assert_eq!(group["myRole"], "OWNER");
    assert_eq!(group["owner"]["id"], ana.id.as_str());
    assert_eq!(
        member_roles(group),
        pairs(&[
            ("ana", "OWNER"),
            ("ben", "MEMBER"),
            ("cyrus", "MEMBER"),
            ("dana", "MEMBER")
        ])
    );
    let seen_by_ben = chat(&app, &ben.token, &id(group), "myRole owner { id }").await;
    assert_eq!(seen_by_ben["myRole"], "MEMBER");
    assert_eq!(seen_by_ben["owner"]["id"], ana.id.as_str());
}

#[tokio::test]
async fn create_group_with_unknown_members_names_them_and_creates_nothing() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let response = app
        .gql(
            Some(&ana.token),
            "mutation($members: [String!]!) { createGroup(input: {name: \"Team\", members: $members}) { id } }",
            json!({ "members": ["ben", "ghost_one", "ghost_two@example.com"] }),
        )
        .await;
    assert_bad_input(&response, Some("members"));
    let message = error_message(&response);
    assert!(
        message.contains("ghost_one") && message.contains("ghost_two@example.com"),
        "the message names every unknown member: {message}"
    );
    assert!(
        !message.contains("ben"),
        "known members are not reported: {message}"
    );
    assert!(
        my_chat_ids(&app, &ana.token, false).await.is_empty(),
        "no group created"
    );
    assert!(my_chat_ids(&app, &ben.token, false).await.is_empty());
}

#[tokio::test]
async fn admins_update_the_group_and_add_and_remove_members() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    app.register("dana").await;
    let group = create_group(&app, &ana.token, "Team", &["ben"]).await;

    let update = "mutation($chat: ID!, $name: String!) { updateGroup(chatId: $chat, input: {name: $name, description: \"new\"}) { name title description } }";
    let updated = app
        .gql_ok(
            Some(&ana.token),
            update,
            json!({ "chat": group, "name": "Renamed" }),
        )
        .await;
    assert_eq!(
        updated["updateGroup"],
        json!({ "name": "Renamed", "title": "Renamed", "description": "new" })
    );
    let refused = app
        .gql(
            Some(&ben.token),
            update,
            json!({ "chat": group, "name": "Mine" }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN", "{refused}");
    assert_eq!(
        chat(&app, &ben.token, &group, "name").await["name"],
        "Renamed"
    );

    let add =
        "mutation($chat: ID!, $who: [String!]!) { addMembers(chatId: $chat, identifiers: $who) }";
    let added = app
        .gql_ok(
            Some(&ana.token),
            add,
            json!({ "chat": group, "who": ["ben", "cyrus", "dana@example.com"] }),
        )
        .await;
    assert_eq!(added["addMembers"], 2, "ben was already a member");
    let again = app
        .gql_ok(
            Some(&ana.token),
            add,
            json!({ "chat": group, "who": ["cyrus"] }),
        )
        .await;
    assert_eq!(again["addMembers"], 0);
    let unknown = app
        .gql(
            Some(&ana.token),
            add,
            json!({ "chat": group, "who": ["ghost"] }),
        )
        .await;
    assert_bad_input(&unknown, Some("identifiers"));
    let by_member = app
        .gql(
            Some(&ben.token),
            add,
            json!({ "chat": group, "who": ["ghost"] }),
        )
        .await;
    assert_eq!(error_code(&by_member), "FORBIDDEN", "{by_member}");
    assert_eq!(
        chat(&app, &ana.token, &group, "memberCount").await["memberCount"],
        4
    );

    let by_member = admin_op(&app, &ben.token, "removeMember", &group, &cyrus.id).await;
    assert_eq!(error_code(&by_member), "FORBIDDEN", "{by_member}");
    let removed = admin_op(&app, &ana.token, "removeMember", &group, &cyrus.id).await;
    assert_eq!(removed["data"]["removeMember"], true, "{removed}");
    assert_eq!(
        chat(&app, &ana.token, &group, "memberCount").await["memberCount"],
        3
    );
    let gone = app
        .gql(
            Some(&cyrus.token),
            "query($id: ID!) { chat(id: $id) { id } }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(
        error_code(&gone),
        "NOT_FOUND",
        "a removed member is a stranger: {gone}"
    );
    assert!(
        !my_chat_ids(&app, &cyrus.token, false)
            .await
            .contains(&group)
    );
}

#[tokio::test]
async fn promote_and_demote_admins() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let dana = app.register("dana").await;
    let group = create_group(&app, &ana.token, "Team", &["ben", "cyrus", "dana"]).await;

    let plain = admin_op(&app, &cyrus.token, "promoteAdmin", &group, &cyrus.id).await;
    assert_eq!(error_code(&plain), "FORBIDDEN", "{plain}");
    let promoted = admin_op(&app, &ana.token, "promoteAdmin", &group, &ben.id).await;
    assert_eq!(promoted["data"]["promoteAdmin"], true, "{promoted}");
    assert_eq!(
        chat(&app, &ben.token, &group, "myRole").await["myRole"],
        "ADMIN"
    );
    // An admin may promote others, but not remove an admin, nor touch the owner.
    let by_admin = admin_op(&app, &ben.token, "promoteAdmin", &group, &cyrus.id).await;
    assert_eq!(by_admin["data"]["promoteAdmin"], true, "{by_admin}");
    for (op, target) in [
        ("removeMember", &cyrus.id),
        ("removeMember", &ana.id),
        ("demoteAdmin", &ana.id),
    ] {
        let response = admin_op(&app, &ben.token, op, &group, target).await;
        assert_eq!(error_code(&response), "FORBIDDEN", "{op}: {response}");
    }
    let self_demote = admin_op(&app, &ana.token, "demoteAdmin", &group, &ana.id).await;
    assert_eq!(
        error_code(&self_demote),
        "FORBIDDEN",
        "the owner stays owner: {self_demote}"
    );
    let removed = admin_op(&app, &ben.token, "removeMember", &group, &dana.id).await;
    assert_eq!(
        removed["data"]["removeMember"], true,
        "an admin removes a plain member: {removed}"
    );

    let roles = chat(
        &app,
        &ana.token,
        &group,
        "members { nodes { user { username } role } }",
    )
    .await;
    assert_eq!(
        member_roles(&roles),
        pairs(&[("ana", "OWNER"), ("ben", "ADMIN"), ("cyrus", "ADMIN")])
    );
    let demoted = admin_op(&app, &ana.token, "demoteAdmin", &group, &cyrus.id).await;
    assert_eq!(demoted["data"]["demoteAdmin"], true, "{demoted}");
    assert_eq!(
        chat(&app, &cyrus.token, &group, "myRole").await["myRole"],
        "MEMBER"
    );
    let no_longer = admin_op(&app, &cyrus.token, "removeMember", &group, &ben.id).await;
    assert_eq!(error_code(&no_longer), "FORBIDDEN", "{no_longer}");
}

#[tokio::test]
async fn owner_leaving_hands_over_to_the_oldest_admin_else_the_oldest_member() {
    let (app, _dir) = spawn_app().await;
    let ana = app.register("ana").await;
    let ben = app.register("ben").await;
    let cyrus = app.register("cyrus").await;
    let dana = app.register("dana").await;
    let leave = "mutation($id: ID!) { leaveChat(chatId: $id) }";
    let view = "myRole owner { id } memberCount";

    // ben joined first but is no admin; cyrus is the oldest admin.
    let with_admins = create_group(&app, &ana.token, "Admins", &["ben"]).await;
    for name in ["cyrus", "dana"] {
        tick().await;
        add_members(&app, &ana.token, &with_admins, &[name]).await;
    }
    promote(&app, &ana.token, &with_admins, &cyrus.id).await;
    promote(&app, &ana.token, &with_admins, &dana.id).await;
    let left = app
        .gql_ok(Some(&ana.token), leave, json!({ "id": with_admins }))
        .await;
    assert_eq!(left["leaveChat"], true);
    let as_cyrus = chat(&app, &cyrus.token, &with_admins, view).await;
    assert_eq!(as_cyrus["owner"]["id"], cyrus.id.as_str(), "{as_cyrus}");
    assert_eq!(as_cyrus["myRole"], "OWNER");
    assert_eq!(as_cyrus["memberCount"], 3);
    assert_eq!(
        chat(&app, &ben.token, &with_admins, view).await["myRole"],
        "MEMBER"
    );
    assert_eq!(
        chat(&app, &dana.token, &with_admins, view).await["myRole"],
        "ADMIN"
    );
    let gone = app
        .gql(
            Some(&ana.token),
            "query($id: ID!) { chat(id: $id) { id } }",
            json!({ "id": with_admins }),
        )
        .await;
    assert_eq!(error_code(&gone), "NOT_FOUND", "{gone}");
    // The new owner has the owner's powers: removing an admin.
    let removed = admin_op(&app, &cyrus.token, "removeMember", &with_admins, &dana.id).await;
    assert_eq!(removed["data"]["removeMember"], true, "{removed}");

    // Without admins the oldest member takes over.
    let plain = create_group(&app, &ana.token, "Plain", &["ben"]).await;
    tick().await;
    add_members(&app, &ana.token, &plain, &["cyrus"]).await;
    app.gql_ok(Some(&ana.token), leave, json!({ "id": plain }))
        .await;
    let as_ben = chat(&app, &ben.token, &plain, view).await;
    assert_eq!(as_ben["owner"]["id"], ben.id.as_str(), "{as_ben}");
    assert_eq!(as_ben["myRole"], "OWNER");
    assert_eq!(
        chat(&app, &cyrus.token, &plain, view).await["myRole"],
        "MEMBER"
    );

    let direct = open_direct(&app, &ana.token, "ben").await;
    let response = app
        .gql(Some(&ana.token), leave, json!({ "id": direct }))
        .await;
    assert_bad_input(&response, None);
}
