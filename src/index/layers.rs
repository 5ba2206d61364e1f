//! [`Layers`]: the in-memory layers of an index — the live one, and under it the frozen one
//! while a snapshot is being written from it — and the moves between them.

use std::sync::Arc;

/// A live layer, and a frozen one under it while a snapshot is written.
#[derive(Debug, Default)]
pub struct Layers<L> {
    /// Where every append goes.
    pub live: L,
    /// Being written into a snapshot; read under `live`.
    pub frozen: Option<Arc<L>>,
}

impl<L: Clone + Default> Layers<L> {
    /// Just a live layer.
    pub fn new(live: L) -> Self {
        Layers { live, frozen: None }
    }

    /// The layers, newest first.
    pub fn iter(&self) -> impl Iterator<Item = &L> {
        std::iter::once(&self.live).chain(self.frozen.as_deref())
    }

    /// Makes the live layer the frozen one, `next` the live one, and returns the frozen one
    /// for a snapshot to be written from (`None` if one is frozen already).
    pub fn freeze(&mut self, next: L) -> Option<Arc<L>> {
        if self.frozen.is_some() {
            return None;
        }
        let frozen = Arc::new(std::mem::replace(&mut self.live, next));
        self.frozen = Some(Arc::clone(&frozen));
        Some(frozen)
    }

    /// Writing the snapshot failed: the frozen layer goes back under the live one, with
    /// `absorb(below, above)` putting the live layer's contents on top of it.
    pub fn thaw(&mut self, absorb: impl FnOnce(&mut L, L)) {
        if let Some(frozen) = self.frozen.take() {
            let mut below = Arc::try_unwrap(frozen).unwrap_or_else(|shared| (*shared).clone());
            absorb(&mut below, std::mem::take(&mut self.live));
            self.live = below;
        }
    }
}
