//! The authorization matrix. One GROUP, one private ROOM and one public ROOM, each with an
//! owner, an admin and a plain member; a stranger and a staff user outside them all. Every
//! operation that takes a chat or a message is one row of `rows()`: its GraphQL, its variables
//! and the expected outcome per role and chat, and what an allowed call must return.
//!
//! Roles run refusals first (stranger, staff, member, then admin and owner), so a refused call
//! cannot be masked by an allowed one. Destructive rows act on their own targets: every admin
//! operation has one target user for the owner (also used by the refused roles) and one for the
//! admin; the joins and leaves come last. All mismatches are collected and reported together.
use serde_json::{Value, json};

use crate::fixtures::{
    create_group, create_room, invite, join_room, promote, register_staff, send, strings,
};
use crate::helpers::{TestApp, TestUser, spawn_app};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Role {
    Owner,
    Admin,
    Member,
    Stranger,
    Staff,
}

/// The column order of the expectation strings.
const COLUMNS: [Role; 5] = [
    Role::Owner,
    Role::Admin,
    Role::Member,
    Role::Stranger,
    Role::Staff,
];
/// The order calls are made in.
const RUN_ORDER: [Role; 5] = [
    Role::Stranger,
    Role::Staff,
    Role::Member,
    Role::Admin,
    Role::Owner,
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Group,
    PrivateRoom,
    PublicRoom,
}

/// One chat under test and the messages prepared in it.
struct Chat {
    kind: Kind,
    id: String,
    /// Posted by `poster`, never deleted.
    seed: String,
    seed_text: String,
    /// The plain member's own message (the edit target).
    by_member: String,
    /// `poster`'s messages to delete: [owner's (and refused roles'), admin's].
    doomed: [String; 2],
}

/// A pair of target users: [for the owner and the refused roles, for the admin].
type Pair = [TestUser; 2];

struct World {
    users: Vec<(Role, TestUser)>,
    remove: Pair,
    promote: Pair,
    demote: Pair,
    mute: Pair,
    add: Pair,
    invite: Pair,
    /// Each role's own group and one message of theirs in it (forwarding source and target).
    notes: Vec<(Role, String, String)>,
    chats: Vec<Chat>,
}

struct Ctx<'a> {
    world: &'a World,
    chat: &'a Chat,
    role: Role,
}

impl<'a> Ctx<'a> {
    fn user(&self) -> &'a TestUser {
        &self
            .world
            .users
            .iter()
            .find(|(r, _)| *r == self.role)
            .unwrap()
            .1
    }

    fn pick(&self, pair: &'a Pair) -> &'a TestUser {
        if self.role == Role::Admin {
            &pair[1]
        } else {
            &pair[0]
        }
    }

    fn doomed(&self) -> &'a str {
        &self.chat.doomed[usize::from(self.role == Role::Admin)]
    }

    /// (chat id, message id) of my own notes group.
    fn notes(&self) -> (&'a str, &'a str) {
        let (_, chat, message) = self
            .world
            .notes
            .iter()
            .find(|(r, ..)| *r == self.role)
            .unwrap();
        (chat, message)
    }

    fn is_member(&self) -> bool {
        matches!(self.role, Role::Owner | Role::Admin | Role::Member)
    }

    fn my_role(&self) -> Value {
        match self.role {
            Role::Owner => json!("OWNER"),
            Role::Admin => json!("ADMIN"),
            Role::Member => json!("MEMBER"),
            _ => Value::Null,
        }
    }
}

struct Row {
    /// The root field, then an optional note in parentheses.
    name: &'static str,
    query: &'static str,
    vars: fn(&Ctx) -> Value,
    /// Per chat kind, the outcome per role in `COLUMNS` order: `ok`, `F` (FORBIDDEN), `N`
    /// (NOT_FOUND) or `-` (not checked); an empty string when the operation does not apply.
    group: &'static str,
    private_room: &'static str,
    public_room: &'static str,
    /// What an allowed call must return (the root field's value).
    check: fn(&Ctx, &Value) -> bool,
}

const READ_PRIVATE: &str = "ok ok ok N ok";
const READ_PUBLIC: &str = "ok ok ok ok ok";
const ACT_PRIVATE: &str = "ok ok ok N F";
const ACT_PUBLIC: &str = "ok ok ok F F";
const ADMIN_PRIVATE: &str = "ok ok F N F";
const ADMIN_PUBLIC: &str = "ok ok F F F";
const SENDER_PRIVATE: &str = "F F ok N F";
const SENDER_PUBLIC: &str = "F F ok F F";
const EVERYONE: &str = "ok ok ok ok ok";

fn rows() -> Vec<Row> {
    vec![
        Row {
            name: "chat",
            query: "query($id: ID!) { chat(id: $id) { id myRole } }",
            vars: |c| json!({ "id": c.chat.id }),
            group: READ_PRIVATE,
            private_room: READ_PRIVATE,
            public_room: READ_PUBLIC,
            check: |c, d| d["id"] == c.chat.id.as_str() && d["myRole"] == c.my_role(),
        },
        Row {
            name: "room",
            query: "query($id: ID!) { room(id: $id) { id kind } }",
            vars: |c| json!({ "id": c.chat.id }),
            group: "",
            private_room: READ_PRIVATE,
            public_room: READ_PUBLIC,
            check: |c, d| d["id"] == c.chat.id.as_str() && d["kind"] == "ROOM",
        },
        Row {
            name: "messages",
            query: "query($id: ID!) { messages(chatId: $id, last: 100) { nodes { id } } }",
            vars: |c| json!({ "id": c.chat.id }),
            group: READ_PRIVATE,
            private_room: READ_PRIVATE,
            public_room: READ_PUBLIC,
            check: |c, d| strings(&d["nodes"], "id").contains(&c.chat.seed),
        },
        Row {
            name: "message",
            query: "query($id: ID!) { message(id: $id) { chatId content } }",
            vars: |c| json!({ "id": c.chat.seed }),
            group: READ_PRIVATE,
            private_room: READ_PRIVATE,
            public_room: READ_PUBLIC,
            check: |c, d| {
                d["chatId"] == c.chat.id.as_str() && d["content"] == c.chat.seed_text.as_str()
            },
        },
        Row {
            name: "searchMessages (members only, never an error)",
            query: "query($q: String!) { searchMessages(query: $q) { nodes { id } } }",
            vars: |c| json!({ "q": c.chat.seed_text }),
            group: EVERYONE,
            private_room: EVERYONE,
            public_room: EVERYONE,
            check: |c, d| {
                let want: Vec<String> = if c.is_member() {
                    vec![c.chat.seed.clone()]
                } else {
                    vec![]
                };
                strings(&d["nodes"], "id") == want
            },
        },
        Row {
            name: "markRead (the seed: it and the member's message before it)",
            query: "mutation($id: ID!) { markRead(messageId: $id) }",
            vars: |c| json!({ "id": c.chat.seed }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |c, d| *d == if c.role == Role::Member { 1 } else { 2 },
        },
        Row {
            name: "markChatRead (the poster's two after the seed)",
            query: "mutation($id: ID!) { markChatRead(chatId: $id) }",
            vars: |c| json!({ "id": c.chat.id }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |_, d| *d == 2,
        },
        Row {
            name: "toggleReaction",
            query: "mutation($id: ID!) { toggleReaction(messageId: $id, emoji: \"👍\") { id reactions { emoji reactedByMe users { id } } } }",
            vars: |c| json!({ "id": c.chat.seed }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |c, d| {
                d["id"] == c.chat.seed.as_str()
                    && d["reactions"].as_array().is_some_and(|groups| {
                        groups.iter().any(|g| {
                            g["emoji"] == "👍"
                                && g["reactedByMe"] == true
                                && strings(&g["users"], "id").contains(&c.user().id)
                        })
                    })
            },
        },
        Row {
            name: "sendMessage",
            query: "mutation($id: ID!, $text: String!) { sendMessage(input: {chatId: $id, content: $text}) { chatId content sender { id } } }",
            vars: |c| json!({ "id": c.chat.id, "text": format!("hello from {:?}", c.role) }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |c, d| {
                d["chatId"] == c.chat.id.as_str()
                    && d["content"] == format!("hello from {:?}", c.role).as_str()
                    && d["sender"]["id"] == c.user().id.as_str()
            },
        },
        Row {
            name: "editMessage (the member's message)",
            query: "mutation($id: ID!, $text: String!) { editMessage(id: $id, content: $text) { id content editedAt } }",
            vars: |c| json!({ "id": c.chat.by_member, "text": format!("edited by {:?}", c.role) }),
            group: SENDER_PRIVATE,
            private_room: SENDER_PRIVATE,
            public_room: SENDER_PUBLIC,
            check: |c, d| {
                d["content"] == format!("edited by {:?}", c.role).as_str()
                    && d["editedAt"].is_string()
            },
        },
        Row {
            name: "deleteMessage (the poster's message)",
            query: "mutation($id: ID!) { deleteMessage(id: $id) { id content isDeleted } }",
            vars: |c| json!({ "id": c.doomed() }),
            group: ADMIN_PRIVATE,
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |c, d| *d == json!({ "id": c.doomed(), "content": null, "isDeleted": true }),
        },
        Row {
            name: "archiveChat",
            query: "mutation($id: ID!) { archiveChat(chatId: $id) { id archived } }",
            vars: |c| json!({ "id": c.chat.id }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |c, d| *d == json!({ "id": c.chat.id, "archived": true }),
        },
        Row {
            name: "unarchiveChat",
            query: "mutation($id: ID!) { unarchiveChat(chatId: $id) { id archived } }",
            vars: |c| json!({ "id": c.chat.id }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |c, d| *d == json!({ "id": c.chat.id, "archived": false }),
        },
        Row {
            name: "updateGroup",
            query: "mutation($id: ID!, $name: String!) { updateGroup(chatId: $id, input: {name: $name}) { id name } }",
            vars: |c| json!({ "id": c.chat.id, "name": format!("renamed by {:?}", c.role) }),
            group: ADMIN_PRIVATE,
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |c, d| d["name"] == format!("renamed by {:?}", c.role).as_str(),
        },
        Row {
            name: "addMembers",
            query: "mutation($id: ID!, $who: [String!]!) { addMembers(chatId: $id, identifiers: $who) }",
            vars: |c| json!({ "id": c.chat.id, "who": [c.pick(&c.world.add).username] }),
            group: ADMIN_PRIVATE,
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |_, d| *d == 1,
        },
        Row {
            name: "inviteToRoom",
            query: "mutation($id: ID!, $who: [String!]!) { inviteToRoom(roomId: $id, identifiers: $who) }",
            vars: |c| json!({ "id": c.chat.id, "who": [c.pick(&c.world.invite).username] }),
            group: "",
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |_, d| *d == 1,
        },
        Row {
            name: "removeMember (a plain member)",
            query: "mutation($id: ID!, $user: ID!) { removeMember(chatId: $id, userId: $user) }",
            vars: |c| json!({ "id": c.chat.id, "user": c.pick(&c.world.remove).id }),
            group: ADMIN_PRIVATE,
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |_, d| *d == true,
        },
        Row {
            name: "promoteAdmin",
            query: "mutation($id: ID!, $user: ID!) { promoteAdmin(chatId: $id, userId: $user) }",
            vars: |c| json!({ "id": c.chat.id, "user": c.pick(&c.world.promote).id }),
            group: ADMIN_PRIVATE,
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |_, d| *d == true,
        },
        Row {
            name: "demoteAdmin",
            query: "mutation($id: ID!, $user: ID!) { demoteAdmin(chatId: $id, userId: $user) }",
            vars: |c| json!({ "id": c.chat.id, "user": c.pick(&c.world.demote).id }),
            group: ADMIN_PRIVATE,
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |_, d| *d == true,
        },
        Row {
            name: "muteMember",
            query: "mutation($id: ID!, $user: ID!) { muteMember(chatId: $id, userId: $user, muted: true) }",
            vars: |c| json!({ "id": c.chat.id, "user": c.pick(&c.world.mute).id }),
            group: ADMIN_PRIVATE,
            private_room: ADMIN_PRIVATE,
            public_room: ADMIN_PUBLIC,
            check: |_, d| *d == true,
        },
        Row {
            name: "forwardMessage (from this chat to my notes)",
            query: "mutation($id: ID!, $to: [ID!]!) { forwardMessage(messageId: $id, targetChatIds: $to) }",
            vars: |c| json!({ "id": c.chat.seed, "to": [c.notes().0] }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |_, d| *d == 1,
        },
        Row {
            name: "forwardMessage (from my notes into this chat)",
            query: "mutation($id: ID!, $to: [ID!]!) { forwardMessage(messageId: $id, targetChatIds: $to) }",
            vars: |c| json!({ "id": c.notes().1, "to": [c.chat.id] }),
            group: ACT_PRIVATE,
            private_room: ACT_PRIVATE,
            public_room: ACT_PUBLIC,
            check: |_, d| *d == 1,
        },
        // Changes membership: from here on the stranger and staff are in the public room.
        Row {
            name: "joinRoom",
            query: "mutation($id: ID!) { joinRoom(roomId: $id) { id myRole } }",
            vars: |c| json!({ "id": c.chat.id }),
            group: "",
            private_room: "- - - N N",
            public_room: "- - - ok ok",
            check: |c, d| *d == json!({ "id": c.chat.id, "myRole": "MEMBER" }),
        },
        Row {
            name: "leaveChat",
            query: "mutation($id: ID!) { leaveChat(chatId: $id) }",
            vars: |c| json!({ "id": c.chat.id }),
            group: "ok ok ok N -",
            private_room: "ok ok ok N -",
            public_room: "",
            check: |_, d| *d == true,
        },
        Row {
            name: "leaveRoom",
            query: "mutation($id: ID!) { leaveRoom(roomId: $id) }",
            vars: |c| json!({ "id": c.chat.id }),
            group: "",
            private_room: "",
            public_room: EVERYONE,
            check: |_, d| *d == true,
        },
    ]
}

/// Registers everyone and builds the three chats.
async fn build(app: &TestApp) -> World {
    let mut users = Vec::new();
    for role in COLUMNS {
        let name = format!("{role:?}").to_lowercase();
        let user = if role == Role::Staff {
            register_staff(app, &name).await
        } else {
            app.register(&name).await
        };
        users.push((role, user));
    }
    let poster = app.register("poster").await;
    let pair = async |name: &str| -> Pair {
        [
            app.register(&format!("{name}_for_owner")).await,
            app.register(&format!("{name}_for_admin")).await,
        ]
    };
    let (remove, promote_pair, demote, mute) = (
        pair("remove").await,
        pair("promote").await,
        pair("demote").await,
        pair("mute").await,
    );
    let (add, invite_pair) = (pair("add").await, pair("invite").await);
    let user = |role: Role| &users.iter().find(|(r, _)| *r == role).unwrap().1;
    let owner = user(Role::Owner);

    let mut joining: Vec<&TestUser> = vec![user(Role::Admin), user(Role::Member), &poster];
    for targets in [&remove, &promote_pair, &demote, &mute] {
        joining.extend(targets.iter());
    }
    let names: Vec<&str> = joining.iter().map(|u| u.username.as_str()).collect();

    let mut chats = Vec::new();
    for kind in [Kind::Group, Kind::PrivateRoom, Kind::PublicRoom] {
        let id = match kind {
            Kind::Group => create_group(app, &owner.token, "the group", &names).await,
            Kind::PrivateRoom | Kind::PublicRoom => {
                let private = kind == Kind::PrivateRoom;
                let id = create_room(app, &owner.token, &format!("{kind:?}"), private).await;
                if private {
                    invite(app, &owner.token, &id, &names).await;
                }
                for u in &joining {
                    join_room(app, &u.token, &id).await;
                }
                id
            }
        };
        for admin in [user(Role::Admin), &demote[0], &demote[1]] {
            promote(app, &owner.token, &id, &admin.id).await;
        }
        let seed_text = format!("seed of the {kind:?}");
        // The member's message comes first: a sender's own marker may move past what they send.
        let by_member = send(app, &user(Role::Member).token, &id, "the member's own").await;
        let seed = send(app, &poster.token, &id, &seed_text).await;
        let doomed = [
            send(app, &poster.token, &id, "doomed one").await,
            send(app, &poster.token, &id, "doomed two").await,
        ];
        chats.push(Chat {
            kind,
            id,
            seed,
            seed_text,
            by_member,
            doomed,
        });
    }

    let mut notes = Vec::new();
    for (role, u) in &users {
        let chat = create_group(app, &u.token, "notes", &[]).await;
        let message = send(app, &u.token, &chat, &format!("note of {role:?}")).await;
        notes.push((*role, chat, message));
    }
    World {
        users,
        remove,
        promote: promote_pair,
        demote,
        mute,
        add,
        invite: invite_pair,
        notes,
        chats,
    }
}

#[tokio::test]
async fn every_chat_operation_for_every_role() {
    let (app, _dir) = spawn_app().await;
    let world = build(&app).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for row in rows() {
        let field = row.name.split(' ').next().unwrap();
        for chat in &world.chats {
            let column = match chat.kind {
                Kind::Group => row.group,
                Kind::PrivateRoom => row.private_room,
                Kind::PublicRoom => row.public_room,
            };
            if column.is_empty() {
                continue;
            }
            let expected: Vec<&str> = column.split_whitespace().collect();
            assert_eq!(
                expected.len(),
                5,
                "{}: bad expectation {column:?}",
                row.name
            );
            for role in RUN_ORDER {
                let want = expected[COLUMNS.iter().position(|r| *r == role).unwrap()];
                if want == "-" {
                    continue;
                }
                let ctx = Ctx {
                    world: &world,
                    chat,
                    role,
                };
                let response = app
                    .gql(Some(&ctx.user().token), row.query, (row.vars)(&ctx))
                    .await;
                let data = &response["data"][field];
                let got = match response["errors"][0]["extensions"]["code"].as_str() {
                    None => "ok",
                    Some("FORBIDDEN") => "F",
                    Some("NOT_FOUND") => "N",
                    Some(other) => other,
                };
                checked += 1;
                if got != want {
                    failures.push(format!(
                        "{} on {:?} as {role:?}: expected {want}, got {got}: {response}",
                        row.name, chat.kind
                    ));
                } else if want == "ok" && !(row.check)(&ctx, data) {
                    failures.push(format!(
                        "{} on {:?} as {role:?}: unexpected data {data}",
                        row.name, chat.kind
                    ));
                } else if want != "ok" && !data.is_null() {
                    failures.push(format!(
                        "{} on {:?} as {role:?}: refused but returned {data}",
                        row.name, chat.kind
                    ));
                }
            }
        }
    }
    eprintln!("authorization matrix: {checked} calls checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} calls wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
