//! [`LogView`]: what readers share with the writer — the committed log, the stream index and
//! the commit signal — and the lookups built on them. The store and its subscriptions read
//! through it.

use std::sync::Arc;

use parking_lot::{RwLock, RwLockReadGuard};

use std::path::Path;

use super::{ReadAll, ReadIndexed, ReadStream};
use crate::error::Result;
use crate::index::postings::{Key, PostingsCache};
use crate::index::{Found, StreamIndex};
use crate::lifecycle::Retention;
use crate::log::{CommitSignal, Snapshot};
use crate::upcast::Upcasters;

/// The committed log as readers see it; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct LogView {
    /// What readers see; replaced by the writer after each append.
    committed: Arc<RwLock<Snapshot>>,
    /// The per-stream index; updated by the writer after `committed`.
    index: Arc<RwLock<StreamIndex>>,
    /// Raised by the writer after each batch.
    signal: Arc<CommitSignal>,
    /// The type and category indexes readers have used.
    postings: Arc<PostingsCache>,
    /// What every read that yields owned events applies.
    upcasters: Upcasters,
}

impl LogView {
    /// A view of what the writer publishes in these.
    pub fn new(
        dir: &Path,
        committed: Arc<RwLock<Snapshot>>,
        index: Arc<RwLock<StreamIndex>>,
        signal: Arc<CommitSignal>,
        upcasters: Upcasters,
    ) -> Self {
        LogView {
            committed,
            index,
            signal,
            postings: Arc::new(PostingsCache::new(dir)),
            upcasters,
        }
    }

    /// The upcasters reads apply.
    pub fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }

    /// Replaces the log and the index with newer ones (a read-only handle's refresh): the log
    /// first, as the writer publishes, then the index, then the signal.
    pub fn replace(&self, committed: Snapshot, index: StreamIndex) {
        let next = committed.next_position;
        *self.committed.write() = committed;
        *self.index.write() = index;
        self.signal.publish(next);
        self.signal.wake_tasks();
    }

    /// The committed log now.
    pub fn snapshot(&self) -> Snapshot {
        self.committed.read().clone()
    }

    /// The position the next event will get.
    pub fn next_position(&self) -> u64 {
        self.committed.read().next_position
    }

    /// What wakes readers waiting for new events.
    pub fn signal(&self) -> &CommitSignal {
        &self.signal
    }

    /// The stream index, for counting.
    pub fn index(&self) -> RwLockReadGuard<'_, StreamIndex> {
        self.index.read()
    }

    /// Every event from `from` on, as committed now.
    pub fn read_all(&self, from: u64) -> ReadAll {
        ReadAll::new(self.snapshot(), from).upcasting(self.upcasters.clone())
    }

    /// The events with `key` (a type or a category) from `from` on, as committed now.
    pub fn read_indexed(&self, key: Key, from: u64) -> ReadIndexed {
        self.read_indexed_in(self.snapshot(), key, from)
    }

    /// The events with `key` from `from` on, as `snapshot` holds them.
    pub fn read_indexed_in(&self, snapshot: Snapshot, key: Key, from: u64) -> ReadIndexed {
        let postings = Arc::clone(&self.postings);
        ReadIndexed::new(snapshot, postings, key, from, self.upcasters.clone())
    }

    /// Calls `f` with a snapshot of the committed log and `stream` as the index has it
    /// (taken in this order under the index lock, so the snapshot holds every event the index
    /// names).
    pub fn lookup<T>(
        &self,
        stream: &str,
        f: impl FnOnce(Snapshot, Option<Found<'_>>) -> Result<T>,
    ) -> Result<T> {
        let index = self.index.read();
        let snapshot = self.snapshot();
        let found = index.lookup(stream, |l, s, v| snapshot.is_event_at(l, s, v))?;
        f(snapshot, found)
    }

    /// A read of `stream` from `from_version` without what `retention` hides, and the
    /// position where the snapshot it reads ends: every event of the stream at or after that
    /// position is newer than the read.
    pub fn read_stream_until(
        &self,
        stream: &str,
        from_version: u64,
        retention: &Retention,
    ) -> (ReadStream, u64) {
        match self.lookup(stream, |snapshot, found| {
            let end = snapshot.next_position;
            let read = ReadStream::new(snapshot, stream, from_version, found, retention)?
                .upcasting(self.upcasters.clone());
            Ok((read, end))
        }) {
            Ok(found) => found,
            Err(e) => {
                let snapshot = self.snapshot();
                let end = snapshot.next_position;
                (ReadStream::failed(snapshot, e), end)
            }
        }
    }
}
