//! [`ReadIndexed`]: the events of one type or one category, in position order, through the
//! type and category indexes ([`crate::index::postings`]): each segment from the start
//! position on gives the list of its events with the key, and only those records are read.

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::format::location;
use crate::index::postings::{Key, PostingsCache};
use crate::log::Snapshot;
use crate::upcast::Upcasters;
use std::sync::Arc;

/// The events of one event type or one category from a position on: see
/// [`Store::read_by_type`](crate::Store::read_by_type) and
/// [`Store::read_category`](crate::Store::read_category).
///
/// It reads the events committed when it was created. After an error it yields nothing more.
#[derive(Debug)]
pub struct ReadIndexed {
    snapshot: Snapshot,
    cache: Arc<PostingsCache>,
    key: Key,
    from: u64,
    /// The segment whose list is in `list`, and the next entry of it.
    segment: usize,
    list: Vec<u32>,
    next: usize,
    /// `list` holds the current segment's events (none is loaded before the first).
    loaded: bool,
    done: bool,
    upcasters: Upcasters,
}

impl ReadIndexed {
    pub(crate) fn new(
        snapshot: Snapshot,
        cache: Arc<PostingsCache>,
        key: Key,
        from: u64,
        upcasters: Upcasters,
    ) -> Self {
        let segment = snapshot.segment_of(from);
        ReadIndexed {
            snapshot,
            cache,
            key,
            from,
            segment,
            list: Vec::new(),
            next: 0,
            loaded: false,
            done: false,
            upcasters,
        }
    }

    /// The next event, or `None` at the end.
    fn advance(&mut self) -> Result<Option<RecordedEvent>> {
        loop {
            if self.next == self.list.len() {
                if self.loaded {
                    self.segment += 1;
                }
                if self.segment >= self.snapshot.segments.len() {
                    return Ok(None);
                }
                self.list = self.cache.list(&self.snapshot, self.segment, &self.key)?;
                self.next = 0;
                self.loaded = true;
                continue;
            }
            let segment = &self.snapshot.segments[self.segment];
            let at = location(segment.seq(), self.list[self.next] as usize);
            self.next += 1;
            // Compaction or erasure removed it since the list was written.
            let Some((view, segment)) = self.snapshot.kept_record_at(at)? else {
                continue;
            };
            if view.position < self.from {
                continue;
            }
            if view.position >= self.snapshot.next_position {
                return Ok(None);
            }
            if !self.key.matches(&view) {
                let reason = "the type and category index names an event of another type or \
                              category here";
                let offset = crate::format::split_location(at).1 as u64;
                return Err(Error::corrupt(segment.path(), offset, reason));
            }
            return self.upcasters.record(&view).map(Some);
        }
    }
}

/// After `None` (the end of the snapshot, or an error) it yields nothing more.
impl std::iter::FusedIterator for ReadIndexed {}

impl Iterator for ReadIndexed {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.advance().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}
