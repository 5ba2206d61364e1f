//! Reading one stream, forward or backward, through the sparse index and the back-pointer
//! chain: `O(n + CHECKPOINT_INTERVAL)` record reads for `n` events, never a scan of the log.
//!
//! Every record reached is verified on its own (its CRC, its stream name, its version and
//! that it is committed), so neither damage nor two streams whose names hash alike can make a
//! read return another stream's event.

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::format::{RecordView, NO_PREV};
use crate::index::{Found, CHECKPOINT_INTERVAL};
use crate::lifecycle::Retention;
use crate::log::Snapshot;
use crate::upcast::Upcasters;

/// Reads the event of `stream` with `version` at `location`, checking that it is what the
/// chain promises; `None` if compaction removed it (and so every older version: compaction
/// removes the oldest events of a stream), or if the index holds no location for it (a
/// checkpoint of versions compaction removed).
fn event_at<'s>(
    snapshot: &'s Snapshot,
    stream: &str,
    version: u64,
    location: u64,
) -> Result<Option<RecordView<'s>>> {
    if location == NO_PREV {
        return Ok(None);
    }
    let Some((view, segment)) = snapshot.kept_record_at(location)? else {
        return Ok(None);
    };
    if view.stream != stream || view.version != version || view.position >= snapshot.next_position {
        return Err(Error::corrupt(
            segment.path(),
            crate::format::split_location(location).1 as u64,
            format!(
                "stream {stream:?} version {version} should be here, found stream {:?} \
                 version {} at position {}",
                view.stream, view.version, view.position
            ),
        ));
    }
    Ok(Some(view))
}

/// The events of a stream from a version on, oldest first: see
/// [`Store::read_stream`](crate::Store::read_stream).
#[derive(Debug)]
pub struct ReadStream {
    snapshot: Snapshot,
    stream: String,
    next_version: u64,
    /// Last version of the stream when the read started (`None`: no events).
    last_version: Option<u64>,
    last_location: u64,
    /// The stream's checkpoints from chunk `first_chunk` on.
    checkpoints: Vec<u64>,
    first_chunk: u64,
    /// Events of the current chunk, newest first (`pop` gives them oldest first); an
    /// upcaster's failure takes the place of its event.
    chunk: Vec<Result<RecordedEvent>>,
    /// An error to return before anything else.
    error: Option<Error>,
    /// Events stamped before this are hidden by retention (left out of `chunk`).
    min_timestamp: u64,
    upcasters: Upcasters,
}

impl ReadStream {
    /// A read from `from_version` on, without the events `retention` hides.
    pub(crate) fn new(
        snapshot: Snapshot,
        stream: &str,
        from_version: u64,
        found: Option<Found<'_>>,
        retention: &Retention,
    ) -> Result<Self> {
        let from_version = found.map_or(from_version, |f| {
            from_version.max(retention.first_visible(f.head.last_version))
        });
        let first_chunk = from_version / CHECKPOINT_INTERVAL;
        let checkpoints = match found {
            Some(found) => found.checkpoints_from(first_chunk)?,
            None => Vec::new(),
        };
        Ok(ReadStream {
            snapshot,
            stream: stream.to_string(),
            next_version: from_version,
            last_version: found.map(|f| f.head.last_version),
            last_location: found.map_or(NO_PREV, |f| f.head.last_location),
            checkpoints,
            first_chunk,
            chunk: Vec::new(),
            error: None,
            min_timestamp: retention.min_timestamp(),
            upcasters: Upcasters::default(),
        })
    }

    /// A read that yields `error` and ends.
    pub(crate) fn failed(snapshot: Snapshot, error: Error) -> Self {
        ReadStream {
            upcasters: Upcasters::default(),
            min_timestamp: 0,
            snapshot,
            stream: String::new(),
            next_version: 0,
            last_version: None,
            last_location: NO_PREV,
            checkpoints: Vec::new(),
            first_chunk: 0,
            chunk: Vec::new(),
            error: Some(error),
        }
    }

    /// The read with `upcasters` applied to the events it yields.
    pub(crate) fn upcasting(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// Reads the chunk holding `next_version` into `chunk`, walking back from its checkpoint
    /// (or from the stream's last event).
    fn fill(&mut self, last_version: u64) -> Result<()> {
        let j = self.next_version / CHECKPOINT_INTERVAL;
        let indexed = usize::try_from(j - self.first_chunk)
            .ok()
            .and_then(|i| self.checkpoints.get(i));
        let (top, mut location) = match indexed {
            Some(&location) => ((j + 1) * CHECKPOINT_INTERVAL - 1, location),
            None => (last_version, self.last_location),
        };
        for version in (self.next_version..=top).rev() {
            let Some(view) = event_at(&self.snapshot, &self.stream, version, location)? else {
                break;
            };
            if view.timestamp >= self.min_timestamp {
                self.chunk.push(self.upcasters.record(&view));
            }
            location = view.prev;
        }
        self.next_version = top + 1;
        Ok(())
    }
}

/// After `None` (the end of the snapshot, or an error) it yields nothing more.
impl std::iter::FusedIterator for ReadStream {}

impl Iterator for ReadStream {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        // A chunk is empty when retention hid all of it: read on.
        loop {
            match self.chunk.pop() {
                Some(Ok(event)) => return Some(Ok(event)),
                Some(Err(e)) => {
                    self.last_version = None;
                    self.chunk.clear();
                    return Some(Err(e));
                }
                None => {}
            }
            let last_version = self.last_version?;
            if self.next_version > last_version {
                return None;
            }
            if let Err(e) = self.fill(last_version) {
                self.last_version = None;
                self.chunk.clear();
                return Some(Err(e));
            }
        }
    }
}

/// The events of a stream from a version down to version 0, newest first: see
/// [`Store::read_stream_backward`](crate::Store::read_stream_backward).
#[derive(Debug)]
pub struct ReadStreamBackward {
    snapshot: Snapshot,
    stream: String,
    /// Where to start: the version and the indexed event to walk back from to reach it.
    start: Option<(u64, u64, u64)>,
    /// The version and location of the next event to return.
    next: Option<(u64, u64)>,
    /// An error to return before anything else.
    error: Option<Error>,
    /// Retention hides the versions below this one, and the events stamped before
    /// `min_timestamp`.
    first_version: u64,
    min_timestamp: u64,
    upcasters: Upcasters,
}

impl ReadStreamBackward {
    /// A read from `from_version` (or the last) down, without the events `retention` hides.
    pub(crate) fn new(
        snapshot: Snapshot,
        stream: &str,
        from_version: Option<u64>,
        found: Option<Found<'_>>,
        retention: &Retention,
    ) -> Result<Self> {
        let mut first_version = 0;
        let start = match found {
            Some(found) => {
                let last = found.head.last_version;
                first_version = retention.first_visible(last);
                let version = from_version.map_or(last, |v| v.min(last));
                match version >= first_version {
                    true => {
                        let (top, location) = found.walk_start(version)?;
                        Some((version, top, location))
                    }
                    false => None,
                }
            }
            None => None,
        };
        Ok(ReadStreamBackward {
            snapshot,
            stream: stream.to_string(),
            start,
            next: None,
            error: None,
            first_version,
            min_timestamp: retention.min_timestamp(),
            upcasters: Upcasters::default(),
        })
    }

    /// A read that yields `error` and ends.
    pub(crate) fn failed(snapshot: Snapshot, error: Error) -> Self {
        ReadStreamBackward {
            snapshot,
            stream: String::new(),
            start: None,
            next: None,
            error: Some(error),
            first_version: 0,
            min_timestamp: 0,
            upcasters: Upcasters::default(),
        }
    }

    /// The read with `upcasters` applied to the events it yields.
    pub(crate) fn upcasting(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = upcasters;
        self
    }

    /// Walks back from the indexed event `top` at `location` to `version`.
    fn locate(&self, version: u64, top: u64, mut location: u64) -> Result<u64> {
        for v in (version + 1..=top).rev() {
            location = match event_at(&self.snapshot, &self.stream, v, location)? {
                Some(view) => view.prev,
                None => NO_PREV,
            };
        }
        Ok(location)
    }
}

/// After `None` (the end of the snapshot, or an error) it yields nothing more.
impl std::iter::FusedIterator for ReadStreamBackward {}

impl Iterator for ReadStreamBackward {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        if let Some((version, top, location)) = self.start.take() {
            match self.locate(version, top, location) {
                Ok(location) => self.next = Some((version, location)),
                Err(e) => return Some(Err(e)),
            }
        }
        loop {
            let (version, location) = self.next.take()?;
            match event_at(&self.snapshot, &self.stream, version, location) {
                Ok(None) => return None,
                Ok(Some(view)) => {
                    if version > self.first_version {
                        self.next = Some((version - 1, view.prev));
                    }
                    if view.timestamp >= self.min_timestamp {
                        return Some(self.upcasters.record(&view));
                    }
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
