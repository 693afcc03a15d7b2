//! The chat list's prefetch: one batch per relation the selection asks for, so a page of chats
//! costs a fixed number of statements.
use async_graphql::{Context, futures_util::future::try_join4};

use crate::{
    domain::reads,
    entity::{chat, chat_member},
    graphql::{
        context::ContextExt,
        loaders::{
            MemberCountOf, Membership, MessageId, OwnerOf, Unread, UserId, VoiceOf,
            members_with_users, messages_with_senders,
        },
    },
};

/// Loads, in one batch per relation, everything the selection asks of a page of chats, so the
/// per-chat field resolvers hit the request's cache: a page of 50 chats costs the same number
/// of statements as a page of 5, whatever the timing.
///
/// `memberships` are the caller's memberships in `chats` (None where not a member), read with
/// the page: they answer `myRole`, `archived`, `isMuted` and give the read markers for
/// `unreadCount` and `unreadMentionCount` without a statement of their own. Members come with their users, and the last
/// messages with their senders; `memberCount` is then the members' number.
pub async fn prefetch_list(
    ctx: &Context<'_>,
    chats: &[chat::Model],
    memberships: &[Option<chat_member::Model>],
) -> async_graphql::Result<()> {
    let look = ctx.look_ahead();
    let nodes = [look.field("nodes"), look.field("edges").field("node")];
    let wants = |field: &str| nodes.iter().any(|n| n.field(field).exists());
    let wants_sender = nodes
        .iter()
        .any(|n| n.field("lastMessage").field("sender").exists());
    let user = ctx.viewer()?.user_id;
    let app = ctx.app();
    let loader = ctx.loader();
    let ids: Vec<uuid::Uuid> = chats.iter().map(|c| c.id).collect();
    let last_ids: Vec<uuid::Uuid> = chats.iter().filter_map(|c| c.last_message_id).collect();

    let mine = memberships.iter().flatten();
    loader
        .feed_many(mine.clone().map(|m| {
            (
                Membership {
                    user,
                    chat: m.chat_id,
                },
                m.clone(),
            )
        }))
        .await;

    let members_needed = wants("members") || wants("title");
    let (members, _, _, _) = try_join4(
        async {
            if !members_needed {
                return Ok(None);
            }
            let (members, users) = members_with_users(app, &ids).await?;
            loader
                .feed_many(
                    members
                        .iter()
                        .map(|(&k, v)| (MemberCountOf(k.0), v.len() as u64)),
                )
                .await;
            loader.feed_many(members.clone()).await;
            loader
                .feed_many(users.into_iter().map(|u| (UserId(u.id), u)))
                .await;
            Ok::<_, async_graphql::Error>(Some(members))
        },
        async {
            if !wants("unreadCount") && !wants("unreadMentionCount") {
                return Ok(());
            }
            let markers: Vec<_> = mine.clone().map(|m| (m.chat_id, m.last_read_seq)).collect();
            let counts = reads::unread_counts(app, user, &markers).await?;
            // Chats the caller is not a member of have nothing unread, as the loader says.
            loader
                .feed_many(ids.iter().map(|&chat| {
                    (
                        Unread { user, chat },
                        counts.get(&chat).copied().unwrap_or_default(),
                    )
                }))
                .await;
            Ok(())
        },
        async {
            if wants("memberCount") && !members_needed {
                loader
                    .load_many(ids.iter().map(|&c| MemberCountOf(c)))
                    .await?;
            }
            Ok(())
        },
        async {
            if !wants("lastMessage") {
                return Ok(());
            }
            if wants_sender {
                let (messages, senders) = messages_with_senders(app, &last_ids).await?;
                loader.feed_many(messages).await;
                loader
                    .feed_many(senders.into_iter().map(|u| (UserId(u.id), u)))
                    .await;
            } else {
                loader
                    .load_many(last_ids.iter().map(|&id| MessageId(id)))
                    .await?;
            }
            Ok(())
        },
    )
    .await?;
    if wants("myRole") || wants("archived") || wants("isMuted") {
        // Only chats listed to staff that they are not a member of are left to look up.
        let unknown = memberships
            .iter()
            .zip(&ids)
            .filter(|(m, _)| m.is_none())
            .map(|(_, &chat)| Membership { user, chat });
        loader.load_many(unknown).await?;
    }
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
    // Users not read with their members or messages (owners, voice seats) in one batch; those
    // already in the request's cache cost nothing.
    let mut users: Vec<UserId> = members
        .iter()
        .flat_map(|m| m.values().flatten())
        .map(|m| UserId(m.user_id))
        .collect();
    users.extend(owners.values().map(|m| UserId(m.user_id)));
    users.extend(voice.values().flatten().map(|p| UserId(p.user_id)));
    if !users.is_empty() {
        loader.load_many(users).await?;
    }
    Ok(())
}
