//! Local fan-out: one bounded broadcast channel per topic that has subscribers on this instance.
//! A slow subscriber that falls more than `CAPACITY` events behind is told how many it missed.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::{broadcast, mpsc};

use super::{Delivered, Topic};

/// Events a subscriber may fall behind by before it is told to resync.
pub const CAPACITY: usize = 256;

/// Topic senders for this instance.
#[derive(Default)]
pub struct Hub {
    topics: Mutex<HashMap<Topic, broadcast::Sender<Arc<Delivered>>>>,
    listener: std::sync::OnceLock<mpsc::UnboundedSender<Topic>>,
}

impl Hub {
    /// The topic map; a panicking holder cannot leave a map of senders inconsistent, so a
    /// poisoned lock is simply taken over.
    fn topics(&self) -> MutexGuard<'_, HashMap<Topic, broadcast::Sender<Arc<Delivered>>>> {
        self.topics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where to announce topics that gained their first local subscriber (the Redis listener).
    pub fn set_listener(&self, listener: mpsc::UnboundedSender<Topic>) {
        let _ = self.listener.set(listener);
    }

    /// Sends to the topic's local subscribers, if any; drops senders nobody listens to.
    pub fn deliver(&self, topic: Topic, event: Arc<Delivered>) {
        let mut topics = self.topics();
        if let Some(sender) = topics.get(&topic)
            && sender.send(event).is_err()
        {
            topics.remove(&topic);
        }
    }

    /// Subscribes to a topic, creating its channel on first use.
    pub fn subscribe(&self, topic: Topic) -> broadcast::Receiver<Arc<Delivered>> {
        let mut topics = self.topics();
        if let Some(sender) = topics.get(&topic) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(CAPACITY);
        topics.insert(topic, sender);
        if let Some(listener) = self.listener.get() {
            let _ = listener.send(topic);
        }
        receiver
    }

    /// Delivers one event to every topic that has local subscribers (the `LinkRestored` marker).
    pub fn deliver_everywhere(&self, event: super::Event) {
        let delivered = Delivered::new(event);
        let mut topics = self.topics();
        topics.retain(|_, sender| sender.send(delivered.clone()).is_ok());
    }

    /// Topics that currently have local subscribers.
    pub fn active_topics(&self) -> Vec<Topic> {
        let mut topics = self.topics();
        topics.retain(|_, sender| sender.receiver_count() > 0);
        topics.keys().copied().collect()
    }
}
