//! Gap-free messages for live feeds. A chat's messages carry a gap-free `seq`, so a feed knows
//! exactly which messages it has not delivered: it remembers the last `seq` it delivered per chat
//! and, when a newer message arrives with a gap before it (lost on the bus, published out of
//! order by two instances, or sent while Redis was down), when its receiver fell behind the ring
//! (`hub::CAPACITY`), or when the Redis link came back (`Event::LinkRestored`), it loads the
//! missing messages from the database (the viewer's access re-checked) and delivers them in order
//! before anything newer. Messages already delivered are dropped, so each arrives once. Events
//! that cannot be replayed (typing, presence, reactions, read markers, members, edits and
//! deletions, playback, voice) are answered with `Feed::Resync` after a lag or a restored link.
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use uuid::Uuid;

use super::Feed;
use crate::{
    domain::{
        Viewer,
        access::{Need, chat_access},
        accounts,
    },
    entity::{chat, message},
    error::{AppError, AppResult},
    events::{Delivered, Event},
    state::AppState,
};

/// Most messages one gap is filled with; a larger gap is a `Resync` with `Gap::Messages`.
pub const FILL_MAX: i64 = 500;

/// What a `Feed::Resync` asks the client to re-fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gap {
    /// Messages were filled in by the feed; other events (typing, reactions, read markers,
    /// members, edits and deletions, …) may be missing.
    Others,
    /// Messages are missing too (more than `FILL_MAX`, or the database could not be read):
    /// re-fetch them with `messages(after: <last cursor>)`.
    Messages,
}

/// What the database answers for a gap.
pub(super) enum Filled {
    /// The messages after the last delivered one up to `upto`, in order (none when the feed
    /// had no position yet: then `upto` becomes its position).
    Messages {
        messages: Vec<message::Model>,
        upto: i64,
    },
    /// More than `FILL_MAX` are missing; the feed moves on to `upto`.
    TooMany { upto: i64 },
    /// The viewer may no longer follow the chat.
    Gone,
    /// The database could not answer.
    Failed,
}

/// Where missing messages come from (the database; a fake in unit tests).
pub(super) trait Store: Send + Sync + 'static {
    /// Messages of `chat_id` after `after` up to `upto` (the chat's last one when `None`).
    fn fill(&self, chat_id: Uuid, after: Option<i64>, upto: Option<i64>) -> BoxFuture<'_, Filled>;

    /// Counts what was filled and signalled (for operators).
    fn count(&self, _filled: u64, _resyncs: u64) {}

    /// The chats the viewer belongs to now, with each one's last `seq` (`None`: unknown, keep
    /// following what is followed): after a lag or a restored link a `myEvents` feed re-reads
    /// them, since being added to or removed from a chat may have been lost.
    fn my_chats(&self) -> BoxFuture<'_, Option<Vec<(Uuid, i64)>>> {
        Box::pin(std::future::ready(None))
    }
}

/// The database, read as `viewer`.
pub(super) struct Db {
    pub app: AppState,
    pub viewer: Viewer,
}

impl Store for Db {
    fn fill(&self, chat_id: Uuid, after: Option<i64>, upto: Option<i64>) -> BoxFuture<'_, Filled> {
        Box::pin(async move {
            match load(&self.app, &self.viewer, chat_id, after, upto).await {
                Ok(filled) => filled,
                Err(AppError::NotFound(_) | AppError::Forbidden(_)) => Filled::Gone,
                Err(err) => {
                    err.log();
                    Filled::Failed
                }
            }
        })
    }

    fn count(&self, filled: u64, resyncs: u64) {
        self.app.bus.stats().count(filled, resyncs);
    }

    fn my_chats(&self) -> BoxFuture<'_, Option<Vec<(Uuid, i64)>>> {
        Box::pin(async move {
            let read = async {
                let chats = accounts::chat_ids(&self.app, self.viewer.user_id).await?;
                last_seqs(&self.app, &chats).await
            };
            match read.await {
                Ok(chats) => Some(chats),
                Err(err) => {
                    err.log();
                    None
                }
            }
        })
    }
}

/// Who may follow a chat live: members, and staff any chat.
pub(super) fn need(viewer: &Viewer) -> Need {
    if viewer.is_staff {
        Need::Read
    } else {
        Need::Member
    }
}

async fn load(
    app: &AppState,
    viewer: &Viewer,
    chat_id: Uuid,
    after: Option<i64>,
    upto: Option<i64>,
) -> AppResult<Filled> {
    let access = chat_access(app, viewer, chat_id, need(viewer)).await?;
    let upto = upto.unwrap_or(access.chat.last_seq);
    let Some(after) = after.filter(|after| *after < upto) else {
        return Ok(Filled::Messages {
            messages: Vec::new(),
            upto: after.map_or(upto, |after| after.max(upto)),
        });
    };
    if upto - after > FILL_MAX {
        return Ok(Filled::TooMany { upto });
    }
    let messages = message::Entity::find()
        .filter(message::Column::ChatId.eq(chat_id))
        .filter(message::Column::Seq.gt(after))
        .filter(message::Column::Seq.lte(upto))
        .order_by_asc(message::Column::Seq)
        .all(&app.db)
        .await?;
    Ok(Filled::Messages { messages, upto })
}

/// The last `seq` of each chat (where a feed starts: only messages after it are new).
pub(super) async fn last_seqs(app: &AppState, chat_ids: &[Uuid]) -> AppResult<Vec<(Uuid, i64)>> {
    Ok(chat::Entity::find()
        .filter(chat::Column::Id.is_in(chat_ids.iter().copied()))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|c| (c.id, c.last_seq))
        .collect())
}

/// What arrived on a chat's topic.
pub(super) enum Arrival {
    Event(Arc<Delivered>),
    /// The receiver fell behind and this many events were dropped from its ring.
    Lagged(u64),
}

/// What to hand the subscriber, and whether the viewer may still follow the chat.
#[derive(Default)]
pub(super) struct Healed {
    pub items: Vec<Feed>,
    pub gone: bool,
}

/// One subscriber's position in one chat's messages.
pub(super) struct ChatLine {
    chat_id: Uuid,
    /// The last `seq` delivered (or known when the feed started); `None`: not known yet, the
    /// first message sets it.
    last: Option<i64>,
    /// Whether a restored link is answered with a `Resync` (a `myEvents` feed sends one for
    /// all its chats, on its user topic); a lag always is.
    signal_restored: bool,
}

impl ChatLine {
    pub fn new(chat_id: Uuid, last: Option<i64>, signal_restored: bool) -> Self {
        Self {
            chat_id,
            last,
            signal_restored,
        }
    }

    /// Handles what arrived: drops a message already delivered, fills a gap before it, and
    /// answers a lag or a restored link with the missing messages and a `Resync`.
    pub async fn receive(&mut self, store: &dyn Store, arrival: Arrival) -> Healed {
        let mut healed = Healed::default();
        let (missed, signal) = match arrival {
            Arrival::Event(delivered) => match &delivered.event {
                Event::MessageCreated { message } => {
                    let seq = message.seq;
                    match self.last {
                        Some(last) if seq <= last => return healed, // delivered already
                        Some(last) if seq > last + 1 => {
                            self.fill(store, Some(seq - 1), &mut healed).await;
                            if healed.gone {
                                return healed;
                            }
                        }
                        _ => {}
                    }
                    self.last = Some(seq);
                    healed.items.push(Feed::Event(delivered));
                    return healed;
                }
                Event::LinkRestored => (0, self.signal_restored),
                _ => {
                    healed.items.push(Feed::Event(delivered));
                    return healed;
                }
            },
            Arrival::Lagged(missed) => (missed, true),
        };
        self.fill(store, None, &mut healed).await;
        if signal && !healed.gone && !healed.items.iter().any(Feed::is_resync) {
            store.count(0, 1);
            healed.items.push(Feed::Resync {
                missed,
                gap: Gap::Others,
                chat_id: Some(self.chat_id),
            });
        }
        healed
    }

    /// Fills from the last delivered message up to `upto` (the chat's last when `None`).
    async fn fill(&mut self, store: &dyn Store, upto: Option<i64>, healed: &mut Healed) {
        match store.fill(self.chat_id, self.last, upto).await {
            Filled::Messages { messages, upto } => {
                store.count(messages.len() as u64, 0);
                healed.items.extend(
                    messages.into_iter().map(|message| {
                        Feed::Event(Delivered::new(Event::MessageCreated { message }))
                    }),
                );
                self.last = Some(upto);
            }
            Filled::TooMany { upto } => {
                store.count(0, 1);
                let missed = self.last.map_or(0, |last| upto - last).unsigned_abs();
                healed.items.push(Feed::Resync {
                    missed,
                    gap: Gap::Messages,
                    chat_id: Some(self.chat_id),
                });
                self.last = Some(upto);
            }
            Filled::Gone => healed.gone = true,
            Filled::Failed => {
                // Position kept: the next message or lag tries again.
                store.count(0, 1);
                healed.items.push(Feed::Resync {
                    missed: 0,
                    gap: Gap::Messages,
                    chat_id: Some(self.chat_id),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use chrono::Utc;
    use futures_util::FutureExt;

    use super::*;
    use crate::entity::message::MessageKind;

    /// A chat held in memory: its messages by seq, and whether the viewer may still read it.
    struct Fake {
        chat_id: Uuid,
        messages: Mutex<Vec<message::Model>>,
        gone: Mutex<bool>,
    }

    impl Fake {
        fn new(n: i64) -> Self {
            let fake = Self {
                chat_id: Uuid::new_v4(),
                messages: Mutex::new(Vec::new()),
                gone: Mutex::new(false),
            };
            for _ in 0..n {
                fake.add();
            }
            fake
        }

        fn add(&self) -> message::Model {
            let mut messages = self.messages.lock().unwrap();
            let message = message::Model {
                id: Uuid::now_v7(),
                chat_id: self.chat_id,
                seq: messages.len() as i64 + 1,
                sender_id: None,
                kind: MessageKind::Text,
                content: Some(format!("m{}", messages.len() + 1)),
                reply_to_id: None,
                forwarded_from_message_id: None,
                forwarded_from_sender_id: None,
                created_at: Utc::now(),
                edited_at: None,
                deleted_at: None,
                thread_root_id: None,
            };
            messages.push(message.clone());
            message
        }
    }

    impl Store for Fake {
        fn fill(
            &self,
            _chat_id: Uuid,
            after: Option<i64>,
            upto: Option<i64>,
        ) -> BoxFuture<'_, Filled> {
            let filled = if *self.gone.lock().unwrap() {
                Filled::Gone
            } else {
                let messages = self.messages.lock().unwrap();
                let upto = upto.unwrap_or(messages.len() as i64);
                match after {
                    None => Filled::Messages {
                        messages: Vec::new(),
                        upto,
                    },
                    Some(after) if upto - after > FILL_MAX => Filled::TooMany { upto },
                    Some(after) => Filled::Messages {
                        messages: messages
                            .iter()
                            .filter(|m| m.seq > after && m.seq <= upto)
                            .cloned()
                            .collect(),
                        upto: upto.max(after),
                    },
                }
            };
            std::future::ready(filled).boxed()
        }
    }

    fn created(message: message::Model) -> Arrival {
        Arrival::Event(Delivered::new(Event::MessageCreated { message }))
    }

    /// The seqs of the messages, and `-1` for each resync (with its gap kind).
    fn seqs(healed: &Healed) -> Vec<(i64, Option<Gap>)> {
        healed
            .items
            .iter()
            .map(|item| match item {
                Feed::Event(d) => match &d.event {
                    Event::MessageCreated { message } => (message.seq, None),
                    _ => (0, None),
                },
                Feed::Resync { gap, .. } => (-1, Some(*gap)),
            })
            .collect()
    }

    #[tokio::test]
    async fn a_gap_before_a_message_is_filled_in_order_and_duplicates_are_dropped() {
        let chat = Fake::new(2);
        let mut line = ChatLine::new(chat.chat_id, Some(2), true);
        let (m3, m4, m5) = (chat.add(), chat.add(), chat.add());
        let healed = line.receive(&chat, created(m5.clone())).await;
        assert_eq!(seqs(&healed), [(3, None), (4, None), (5, None)]);
        for late in [m3, m4, m5] {
            assert!(line.receive(&chat, created(late)).await.items.is_empty());
        }
        let m6 = chat.add();
        assert_eq!(seqs(&line.receive(&chat, created(m6)).await), [(6, None)]);
    }

    #[tokio::test]
    async fn a_lag_or_a_restored_link_fills_up_to_the_last_message_then_asks_for_a_resync() {
        let chat = Fake::new(1);
        let mut line = ChatLine::new(chat.chat_id, Some(1), true);
        let (m2, m3) = (chat.add(), chat.add());
        let healed = line.receive(&chat, Arrival::Lagged(7)).await;
        assert_eq!(
            seqs(&healed),
            [(2, None), (3, None), (-1, Some(Gap::Others))]
        );
        assert!(matches!(healed.items[2], Feed::Resync { missed: 7, .. }));
        // The ring still held them: dropped.
        assert!(line.receive(&chat, created(m2)).await.items.is_empty());
        assert!(line.receive(&chat, created(m3)).await.items.is_empty());
        let m4 = chat.add();
        let restored = Arrival::Event(Delivered::new(Event::LinkRestored));
        let healed = line.receive(&chat, restored).await;
        assert_eq!(seqs(&healed), [(4, None), (-1, Some(Gap::Others))]);
        assert!(line.receive(&chat, created(m4)).await.items.is_empty());
    }

    #[tokio::test]
    async fn a_my_events_line_fills_silently_after_a_restored_link() {
        let chat = Fake::new(1);
        let mut line = ChatLine::new(chat.chat_id, Some(1), false);
        chat.add();
        let restored = Arrival::Event(Delivered::new(Event::LinkRestored));
        let healed = line.receive(&chat, restored).await;
        assert_eq!(seqs(&healed), [(2, None)]);
    }

    #[tokio::test]
    async fn a_gap_larger_than_the_bound_is_a_resync_for_messages() {
        let chat = Fake::new(1);
        let mut line = ChatLine::new(chat.chat_id, Some(1), true);
        for _ in 0..FILL_MAX + 1 {
            chat.add();
        }
        let next = chat.add();
        let healed = line.receive(&chat, created(next)).await;
        assert_eq!(
            seqs(&healed),
            [(-1, Some(Gap::Messages)), (FILL_MAX + 3, None)]
        );
        assert!(
            matches!(healed.items[0], Feed::Resync { missed, .. } if missed == FILL_MAX as u64 + 1)
        );
    }

    #[tokio::test]
    async fn a_feed_that_starts_without_a_position_takes_the_first_message_as_it() {
        let chat = Fake::new(3);
        let mut line = ChatLine::new(chat.chat_id, None, true);
        let m4 = chat.add();
        assert_eq!(seqs(&line.receive(&chat, created(m4)).await), [(4, None)]);
    }

    #[tokio::test]
    async fn a_chat_the_viewer_may_no_longer_read_is_gone() {
        let chat = Fake::new(1);
        let mut line = ChatLine::new(chat.chat_id, Some(1), true);
        chat.add();
        let m3 = chat.add();
        *chat.gone.lock().unwrap() = true;
        let healed = line.receive(&chat, created(m3)).await;
        assert!(healed.gone && healed.items.is_empty());
    }
}
