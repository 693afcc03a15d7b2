//! The rendered forms of one delivered event, kept on the event so that the subscribers who
//! select it the same way (one subscription shape, and one viewer when the selection reads
//! viewer-dependent fields) share one rendering: the first to need it starts it, the others wait
//! for the same result. It runs as a task of its own, so a subscriber whose socket is slow to
//! take its frames never holds the others up. They go with the event once every subscriber is
//! past it. A shape that rendered an event of a topic is registered with the topic
//! ([`Prerender`], `hub::Hub::prerender`): its next events are rendered before they are
//! broadcast, so subscribers find the rendering done instead of waiting for it.
use std::sync::{Arc, Mutex};

use futures_util::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use uuid::Uuid;

/// A subscription shape's number (never reused in a process) and, when its selection depends on
/// who asks, the viewer.
pub type RenderKey = (u64, Option<Uuid>);

/// One rendering: the payload's JSON, or `None` when the selection yields nothing for the event.
pub type Rendered = Option<Arc<str>>;

/// A rendering in progress or done, awaitable by any number of subscribers.
pub type Rendering = Shared<BoxFuture<'static, Rendered>>;

/// A subscription shape that renders a topic's events as they arrive, before they are broadcast.
pub trait Prerender: Send + Sync {
    /// Starts (or finds) this shape's rendering of `event`; `None` when it renders nothing
    /// ahead for such an event.
    fn start(&self, event: &Arc<super::Delivered>) -> Option<Rendering>;
}

/// The renderings of one event, by key; a handful at most (one per distinct shape).
#[derive(Default)]
pub struct Renders(Mutex<Vec<(RenderKey, Rendering)>>);

impl std::fmt::Debug for Renders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renders")
    }
}

impl Renders {
    /// The rendering for `key`; the first asker's `render` is spawned for everyone.
    pub fn get_or_start(
        &self,
        key: RenderKey,
        render: impl FnOnce() -> BoxFuture<'static, Rendered>,
    ) -> Rendering {
        self.find_or_start(key, render).0
    }

    /// As `get_or_start`, and whether this call started it.
    pub fn find_or_start(
        &self,
        key: RenderKey,
        render: impl FnOnce() -> BoxFuture<'static, Rendered>,
    ) -> (Rendering, bool) {
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, rendering)) = slots.iter().find(|(k, _)| *k == key) {
            return (rendering.clone(), false);
        }
        let task = tokio::spawn(render());
        // A rendering that panicked is nothing to send.
        let rendering = task.map(|done| done.ok().flatten()).boxed().shared();
        slots.push((key, rendering.clone()));
        (rendering, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &'static str) -> impl FnOnce() -> BoxFuture<'static, Rendered> {
        move || async move { Some(Arc::from(text)) }.boxed()
    }

    #[tokio::test]
    async fn one_key_renders_once_and_keys_stay_apart() {
        let renders = Renders::default();
        let viewer = Uuid::new_v4();
        let first = renders.get_or_start((1, None), rendered("a")).await;
        let again = renders.get_or_start((1, None), rendered("b")).await;
        let other = renders.get_or_start((1, Some(viewer)), rendered("c")).await;
        assert_eq!(first.as_deref(), Some("a"));
        assert_eq!(
            again.as_deref(),
            Some("a"),
            "the second asker reuses the first rendering"
        );
        assert_eq!(
            other.as_deref(),
            Some("c"),
            "another viewer of a per-viewer shape renders"
        );
    }

    #[tokio::test]
    async fn a_rendering_goes_on_while_its_first_asker_is_not_waiting() {
        let renders = Renders::default();
        // The first asker starts it and never polls it again (its socket is busy writing).
        let _stalled = renders.get_or_start((7, None), rendered("x"));
        let second = renders.get_or_start((7, None), rendered("y"));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), second).await;
        assert_eq!(got.expect("not held up").as_deref(), Some("x"));
    }
}
