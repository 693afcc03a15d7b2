//! The rendered forms of one delivered event, kept on the event so that the subscribers who
//! select it the same way (one subscription shape, and one viewer when the selection reads
//! viewer-dependent fields) share one rendering: the first to need it renders it, the others wait
//! for that and reuse the bytes. They go with the event once every subscriber is past it.
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use uuid::Uuid;

/// A subscription shape's number (never reused in a process) and, when its selection depends on
/// who asks, the viewer.
pub type RenderKey = (u64, Option<Uuid>);

/// One rendering: the payload's JSON, or `None` when the selection yields nothing for the event.
pub type Rendered = Option<Arc<str>>;

/// The renderings of one event, by key; a handful at most (one per distinct shape).
#[derive(Debug, Default)]
pub struct Renders(Mutex<Vec<(RenderKey, Arc<OnceCell<Rendered>>)>>);

impl Renders {
    /// The cell for `key`, made empty on first use; whoever initialises it renders for everyone.
    pub fn slot(&self, key: RenderKey) -> Arc<OnceCell<Rendered>> {
        let mut slots = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, cell)) = slots.iter().find(|(k, _)| *k == key) {
            return cell.clone();
        }
        let cell = Arc::new(OnceCell::new());
        slots.push((key, cell.clone()));
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_key_renders_once_and_keys_stay_apart() {
        let renders = Renders::default();
        let viewer = Uuid::new_v4();
        let first = renders
            .slot((1, None))
            .get_or_init(|| async { Some(Arc::from("a")) })
            .await
            .clone();
        let again = renders
            .slot((1, None))
            .get_or_init(|| async { Some(Arc::from("b")) })
            .await
            .clone();
        let other = renders
            .slot((1, Some(viewer)))
            .get_or_init(|| async { Some(Arc::from("c")) })
            .await
            .clone();
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
}
