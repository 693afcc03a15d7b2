//! Local fan-out: one bounded broadcast channel per topic that has subscribers on this instance.
//! A slow subscriber that falls more than `CAPACITY` events behind is told how many it missed.
//! A topic whose events subscription shapes render (`renders::Prerender`) gets them rendered
//! before they are broadcast: its events pass through a queue of their own (`prerender`), in
//! order, so each subscriber wakes once per event and finds its frame's payload ready.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use tokio::sync::{broadcast, mpsc};

use super::{Delivered, Topic, renders::Prerender};

/// Events a subscriber may fall behind by before it is told to resync.
pub const CAPACITY: usize = 256;

/// How long a topic's queue waits for an event's renderings before it broadcasts the event
/// anyway (its subscribers then wait for the renderings themselves, as without a queue).
const PRERENDER_WAIT: Duration = Duration::from_secs(2);

/// One topic with local subscribers.
struct Channel {
    sender: broadcast::Sender<Arc<Delivered>>,
    /// The shapes that render this topic's events, while they live.
    renderers: Vec<Weak<dyn Prerender>>,
    /// The queue events pass through once the topic has renderers.
    queue: Option<mpsc::UnboundedSender<Arc<Delivered>>>,
}

/// Topic senders for this instance.
#[derive(Default)]
pub struct Hub {
    topics: Mutex<HashMap<Topic, Channel>>,
    listener: std::sync::OnceLock<mpsc::UnboundedSender<Topic>>,
}

impl Hub {
    /// The topic map; a panicking holder cannot leave a map of senders inconsistent, so a
    /// poisoned lock is simply taken over.
    fn topics(&self) -> MutexGuard<'_, HashMap<Topic, Channel>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where to announce topics that gained their first local subscriber (the Redis listener).
    pub fn set_listener(&self, listener: mpsc::UnboundedSender<Topic>) {
        let _ = self.listener.set(listener);
    }

    /// Sends to the topic's local subscribers, if any (through its queue when shapes render
    /// it); drops senders nobody listens to.
    pub fn deliver(&self, topic: Topic, event: Arc<Delivered>) {
        let _ = event.topic.set(topic);
        let mut topics = self.topics();
        let Some(channel) = topics.get(&topic) else {
            return;
        };
        if let Some(queue) = &channel.queue
            && queue.send(event.clone()).is_ok()
        {
            return;
        }
        broadcast_in(&mut topics, topic, event);
    }

    /// Broadcasts an event its queue is done with.
    fn broadcast(&self, topic: Topic, event: Arc<Delivered>) {
        broadcast_in(&mut self.topics(), topic, event);
    }

    /// Subscribes to a topic, creating its channel on first use.
    pub fn subscribe(&self, topic: Topic) -> broadcast::Receiver<Arc<Delivered>> {
        let mut topics = self.topics();
        if let Some(channel) = topics.get(&topic) {
            return channel.sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(CAPACITY);
        topics.insert(
            topic,
            Channel {
                sender,
                renderers: Vec::new(),
                queue: None,
            },
        );
        if let Some(listener) = self.listener.get() {
            let _ = listener.send(topic);
        }
        receiver
    }

    /// From now on `renderer` renders the topic's events before they are broadcast, while it
    /// lives and the topic has local subscribers.
    pub fn prerender(self: &Arc<Self>, topic: Topic, renderer: Weak<dyn Prerender>) {
        let mut topics = self.topics();
        let Some(channel) = topics.get_mut(&topic) else {
            return;
        };
        channel.renderers.retain(|r| r.strong_count() > 0);
        if channel.renderers.iter().any(|r| Weak::ptr_eq(r, &renderer)) {
            return;
        }
        channel.renderers.push(renderer);
        if channel.queue.is_none() {
            let (queue, events) = mpsc::unbounded_channel();
            channel.queue = Some(queue);
            tokio::spawn(prerender(self.clone(), topic, events));
        }
    }

    /// The live renderers of a topic.
    fn renderers(&self, topic: Topic) -> Vec<Arc<dyn Prerender>> {
        let topics = self.topics();
        topics
            .get(&topic)
            .map(|channel| channel.renderers.iter().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }

    /// Delivers one event to every topic that has local subscribers (the `LinkRestored` marker).
    pub fn deliver_everywhere(&self, event: super::Event) {
        let delivered = Delivered::new(event);
        let mut topics = self.topics();
        topics.retain(|_, channel| match &channel.queue {
            Some(queue) => queue.send(delivered.clone()).is_ok(),
            None => channel.sender.send(delivered.clone()).is_ok(),
        });
    }

    /// Topics that currently have local subscribers.
    pub fn active_topics(&self) -> Vec<Topic> {
        let mut topics = self.topics();
        topics.retain(|_, channel| channel.sender.receiver_count() > 0);
        topics.keys().copied().collect()
    }
}

/// Sends to the topic's subscribers, if any; drops the channel when nobody listens any more.
fn broadcast_in(topics: &mut HashMap<Topic, Channel>, topic: Topic, event: Arc<Delivered>) {
    if let Some(channel) = topics.get(&topic)
        && channel.sender.send(event).is_err()
    {
        topics.remove(&topic);
    }
}

/// A topic's queue: each event's renderings are started (those of every event waiting, at
/// once), then the events are broadcast in order as their renderings finish, the whole batch
/// within `PRERENDER_WAIT` (renderings that hang, as when the database does not answer, delay a
/// batch once, not each event). Ends when the topic's channel is dropped (no local subscriber
/// left).
async fn prerender(
    hub: Arc<Hub>,
    topic: Topic,
    mut events: mpsc::UnboundedReceiver<Arc<Delivered>>,
) {
    let mut batch = Vec::new();
    while events.recv_many(&mut batch, 64).await > 0 {
        let renderers = hub.renderers(topic);
        let started: Vec<_> = batch
            .iter()
            .map(|event| {
                renderers
                    .iter()
                    .filter_map(|renderer| renderer.start(event))
                    .collect::<Vec<_>>()
            })
            .collect();
        let deadline = tokio::time::Instant::now() + PRERENDER_WAIT;
        for (event, renderings) in batch.drain(..).zip(started) {
            let ready = futures_util::future::join_all(renderings);
            let _ = tokio::time::timeout_at(deadline, ready).await;
            hub.broadcast(topic, event);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::{FutureExt, future::BoxFuture};

    use super::*;
    use crate::events::{
        Event,
        renders::{Rendered, Rendering},
    };

    /// Renders each event as its chat id after `delay`, counting its renderings.
    struct Slow {
        delay: Duration,
        started: AtomicUsize,
    }

    impl Prerender for Slow {
        fn start(&self, event: &Arc<Delivered>) -> Option<Rendering> {
            self.started.fetch_add(1, Ordering::SeqCst);
            let delay = self.delay;
            let text = match &event.event {
                Event::ChatUpdated { chat_id } => chat_id.to_string(),
                _ => return None,
            };
            let render = move || -> BoxFuture<'static, Rendered> {
                async move {
                    tokio::time::sleep(delay).await;
                    Some(Arc::from(text.as_str()))
                }
                .boxed()
            };
            Some(event.renders.get_or_start((1, None), render))
        }
    }

    fn updated(n: u128) -> Arc<Delivered> {
        Delivered::new(Event::ChatUpdated {
            chat_id: uuid::Uuid::from_u128(n),
        })
    }

    #[tokio::test]
    async fn a_rendered_topic_broadcasts_each_event_rendered_and_in_order() {
        let hub = Arc::new(Hub::default());
        let topic = Topic::Chat(uuid::Uuid::from_u128(9));
        let mut receiver = hub.subscribe(topic);
        let slow = Arc::new(Slow {
            delay: Duration::from_millis(50),
            started: AtomicUsize::new(0),
        });
        let weak: Weak<dyn Prerender> = Arc::downgrade(&slow) as Weak<dyn Prerender>;
        hub.prerender(topic, weak.clone());
        hub.prerender(topic, weak);
        for n in 1..=5 {
            hub.deliver(topic, updated(n));
        }
        for n in 1..=5 {
            let event = receiver.recv().await.expect("delivered");
            let rendered = event.renders.get_or_start((1, None), || unreachable!());
            assert_eq!(
                rendered.peek().cloned().flatten().as_deref(),
                Some(uuid::Uuid::from_u128(n).to_string().as_str()),
                "event {n} arrives in order, already rendered"
            );
            assert_eq!(event.topic.get(), Some(&topic));
        }
        assert_eq!(slow.started.load(Ordering::SeqCst), 5, "registered once");
    }

    #[tokio::test]
    async fn a_stuck_rendering_holds_its_topic_up_for_a_bounded_time_only() {
        let hub = Arc::new(Hub::default());
        let topic = Topic::Chat(uuid::Uuid::from_u128(9));
        let mut receiver = hub.subscribe(topic);
        let stuck = Arc::new(Slow {
            delay: Duration::from_secs(3600),
            started: AtomicUsize::new(0),
        });
        hub.prerender(topic, Arc::downgrade(&stuck) as Weak<dyn Prerender>);
        let start = tokio::time::Instant::now();
        for n in 1..=3 {
            hub.deliver(topic, updated(n));
        }
        for _ in 0..2 {
            receiver.recv().await.expect("delivered");
        }
        let event = receiver
            .recv()
            .await
            .expect("delivered without its rendering");
        assert!(
            event
                .renders
                .get_or_start((1, None), || unreachable!())
                .peek()
                .is_none()
        );
        assert!(
            start.elapsed() >= PRERENDER_WAIT,
            "waited for the rendering first"
        );
        assert!(
            start.elapsed() < PRERENDER_WAIT * 2,
            "the waiting events shared one bound: {:?}",
            start.elapsed()
        );
        // A renderer that is gone renders nothing more: the next event goes out at once.
        drop(stuck);
        let start = tokio::time::Instant::now();
        hub.deliver(topic, updated(4));
        receiver.recv().await.expect("delivered");
        assert!(
            start.elapsed() < PRERENDER_WAIT / 2,
            "not held up by a renderer gone"
        );
    }

    #[tokio::test]
    async fn a_topic_nobody_follows_any_more_ends_its_queue() {
        let hub = Arc::new(Hub::default());
        let topic = Topic::Chat(uuid::Uuid::from_u128(9));
        let receiver = hub.subscribe(topic);
        let slow = Arc::new(Slow {
            delay: Duration::from_millis(1),
            started: AtomicUsize::new(0),
        });
        hub.prerender(topic, Arc::downgrade(&slow) as Weak<dyn Prerender>);
        drop(receiver);
        hub.deliver(topic, updated(1));
        for _ in 0..100 {
            if hub.topics().is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the topic's channel was not dropped");
    }
}
