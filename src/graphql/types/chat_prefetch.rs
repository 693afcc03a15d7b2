//! The chat list's prefetch: one batch per relation the selection asks for, so a page of chats
//! costs a fixed number of statements.
use async_graphql::Context;

use crate::{
    entity::chat,
    graphql::{
        context::ContextExt,
        loaders::{
            MemberCountOf, MembersOf, Membership, MessageId, OwnerOf, Unread, UserId, VoiceOf,
        },
    },
};

/// Loads, in one batch per relation, everything the selection asks of a page of chats, so the
/// per-chat field resolvers hit the request's cache: a page of 50 chats costs the same number
/// of statements as a page of 5, whatever the timing.
pub async fn prefetch_list(ctx: &Context<'_>, chats: &[chat::Model]) -> async_graphql::Result<()> {
    use async_graphql::futures_util::future::try_join5;

    let look = ctx.look_ahead();
    let nodes = [look.field("nodes"), look.field("edges").field("node")];
    let wants = |field: &str| nodes.iter().any(|n| n.field(field).exists());
    let wants_sender = nodes
        .iter()
        .any(|n| n.field("lastMessage").field("sender").exists());
    let user = ctx.viewer()?.user_id;
    let loader = ctx.loader();
    let ids: Vec<uuid::Uuid> = chats.iter().map(|c| c.id).collect();
    let last_ids: Vec<MessageId> = chats
        .iter()
        .filter_map(|c| c.last_message_id)
        .map(MessageId)
        .collect();
    let mine = || ids.iter().map(|&chat| Membership { user, chat });

    let members_needed = wants("members") || wants("title");
    let (members, _, _, _, last) = try_join5(
        async {
            if members_needed {
                loader.load_many(ids.iter().map(|&c| MembersOf(c))).await
            } else {
                Ok(Default::default())
            }
        },
        async {
            if wants("myRole") || wants("archived") || wants("isMuted") {
                loader.load_many(mine()).await.map(|_| ())
            } else {
                Ok(())
            }
        },
        async {
            if wants("unreadCount") {
                loader
                    .load_many(ids.iter().map(|&chat| Unread { user, chat }))
                    .await
                    .map(|_| ())
            } else {
                Ok(())
            }
        },
        async {
            if wants("memberCount") {
                loader
                    .load_many(ids.iter().map(|&c| MemberCountOf(c)))
                    .await
                    .map(|_| ())
            } else {
                Ok(())
            }
        },
        async {
            if wants("lastMessage") {
                loader.load_many(last_ids.clone()).await
            } else {
                Ok(Default::default())
            }
        },
    )
    .await?;
    let owners = if wants("owner") {
        loader.load_many(ids.iter().map(|&c| OwnerOf(c))).await?
    } else {
        Default::default()
    };
    let voice = if wants("voiceParticipants") {
        loader.load_many(ids.iter().map(|&c| VoiceOf(c))).await?
    } else {
        Default::default()
    };
    let mut users: Vec<UserId> = members
        .values()
        .flatten()
        .map(|m| UserId(m.user_id))
        .collect();
    users.extend(owners.values().map(|m| UserId(m.user_id)));
    users.extend(voice.values().flatten().map(|p| UserId(p.user_id)));
    if wants_sender {
        users.extend(last.values().filter_map(|m| m.sender_id).map(UserId));
    }
    if !users.is_empty() {
        loader.load_many(users).await?;
    }
    Ok(())
}
