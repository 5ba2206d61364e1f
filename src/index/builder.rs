//! [`IndexBuilder`]: the live layer of the stream index, built while opening a store from the
//! events after the index snapshot (or from every sealed segment's side file and the tail,
//! without one), keyed by full names, checking that each stream's versions and back pointers
//! continue where they left off — in the snapshot, for a stream it holds.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{split_location, Damage, NO_PREV};
use crate::fs::segment::Segment;
use crate::index::mapped::MappedIndex;
use crate::index::{Head, Layer, NameKeyed, Slot, StreamEntry, StreamHasher};

/// A stream as the builder knows it.
#[derive(Debug, Default)]
struct Built {
    entry: StreamEntry,
    /// Where the stream lives in the snapshot, if it is there.
    in_base: Option<Slot>,
}

/// Builds the live layer while opening a store.
pub struct IndexBuilder<'a> {
    hasher: StreamHasher,
    base: Option<&'a MappedIndex>,
    /// Each stream's index in `built` (one lookup per event or span).
    streams: NameKeyed<usize>,
    built: Vec<Built>,
    /// Why the snapshot could not be read, if it could not.
    failure: Option<Error>,
    /// The sealed segments (by sequence number), to tell a back pointer to an event that
    /// compaction removed from a broken chain.
    sealed: &'a [Arc<Segment>],
}

impl std::fmt::Debug for IndexBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexBuilder")
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

/// What adding to the builder gives: whether the event or span continues its stream. If the
/// snapshot could not be read it is an error too, and [`IndexBuilder::failure`] says why.
pub type Added = std::result::Result<(), Damage>;

impl<'a> IndexBuilder<'a> {
    /// A builder of the layer above `base`, or of a whole index.
    pub fn new(hasher: StreamHasher, base: Option<&'a MappedIndex>) -> Self {
        IndexBuilder {
            hasher,
            base,
            streams: NameKeyed::default(),
            built: Vec::new(),
            failure: None,
            sealed: &[],
        }
    }

    /// The builder over a log whose sealed segments are `sealed`: a stream whose first event
    /// here points back at an event that compaction removed from one of them continues from
    /// there (its earlier versions gone) instead of being damage.
    pub fn over(mut self, sealed: &'a [Arc<Segment>]) -> Self {
        self.sealed = sealed;
        self
    }

    /// Whether `location` names an event that a rewrite removed.
    fn removed(&self, location: u64) -> bool {
        let (seq, offset) = split_location(location);
        let segment = usize::try_from(seq).ok().and_then(|i| self.sealed.get(i));
        segment.is_some_and(|s| s.trailer().is_some() && matches!(s.locate(offset), Ok(None)))
    }

    /// Why the snapshot could not be read while adding, if it could not: then the errors
    /// adding returned say nothing of the log.
    pub fn failure(&mut self) -> Option<Error> {
        self.failure.take()
    }

    /// Adds one event.
    pub fn add_event(&mut self, stream: &str, version: u64, prev: u64, location: u64) -> Added {
        self.entry_continued(stream, version, prev)
            .map(|entry| entry.push(version, location))
    }

    /// Adds what a segment's index side file says of one stream: its events in that segment
    /// run from `first_version` (whose back pointer is `first_prev`) to `last_version` at
    /// `last_location`, with these checkpoints.
    pub fn add_span(
        &mut self,
        stream: &str,
        first_version: u64,
        first_prev: u64,
        last_version: u64,
        last_location: u64,
        checkpoints: &[u64],
    ) -> Added {
        if last_version < first_version {
            return Err(Damage::Discontinuous {
                stream: stream.into(),
                what: "last version in the segment",
                found: last_version,
                expected: first_version,
            });
        }
        let before = first_version
            .checked_sub(1)
            .map_or(0, StreamEntry::expected_checkpoints);
        let expected = StreamEntry::expected_checkpoints(last_version).saturating_sub(before);
        if expected != checkpoints.len() as u64 {
            return Err(Damage::Discontinuous {
                stream: stream.into(),
                what: "checkpoint count in the segment",
                found: checkpoints.len() as u64,
                expected,
            });
        }
        self.entry_continued(stream, first_version, first_prev)
            .map(|entry| {
                entry.checkpoints.extend_from_slice(checkpoints);
                entry.last_version = last_version;
                entry.last_location = last_location;
            })
    }

    /// The head and slot in the snapshot of `stream`, whose first event here has `version`
    /// and back pointer `prev`: a stream the snapshot keeps by name, or the owner of the
    /// stream's hash. No record is read to tell streams that hash alike apart: a stream not
    /// kept by name that starts here is new (version 0, no back pointer), and any other event
    /// must continue the hash's owner (a back pointer names one record, so only the owner's
    /// next event can), or it is damage, reported against the owner.
    fn in_base(&self, stream: &str, version: u64, prev: u64) -> Result<Option<(Head, Slot)>> {
        let Some(base) = self.base else {
            return Ok(None);
        };
        if let Some(e) = base.collided(stream) {
            // An erased stream's entry is no stream any more.
            if !self.removed(e.last_location) {
                return Ok(Some((e.into(), Slot::Collided)));
            }
        }
        if version == 0 && prev == NO_PREV {
            return Ok(None);
        }
        let hash = (self.hasher)(stream);
        // An owner whose last event erasure removed holds no stream any more.
        let owner = base
            .stream(hash)?
            .filter(|e| !self.removed(e.last_location));
        Ok(owner.map(|e| (e.into(), Slot::Hashed(hash))))
    }

    /// The entry that an event of `stream` with this version and back pointer continues
    /// (a new one for version 0 of a new stream).
    fn entry_continued(
        &mut self,
        stream: &str,
        version: u64,
        prev: u64,
    ) -> std::result::Result<&mut StreamEntry, Damage> {
        let known = self.streams.get(stream).copied();
        let (head, in_base) = match known {
            Some(i) => (Some(self.built[i].entry.head()), None),
            None => match self.in_base(stream, version, prev) {
                Ok(Some((head, slot))) => (Some(head), Some(slot)),
                Ok(None) => (None, None),
                Err(e) => {
                    self.failure = Some(e);
                    return Err(Damage::Field {
                        what: "index snapshot",
                        problem: "unreadable",
                    });
                }
            },
        };
        // Versions that compaction removed: the event points back at one of them.
        let mut removed_from = None;
        if let Some(damage) = check_continues(stream, version, prev, head) {
            let next = head.map_or(Some(0), |h| h.last_version.checked_add(1));
            match next {
                Some(next) if version > next && prev != NO_PREV && self.removed(prev) => {
                    removed_from = Some(next);
                }
                _ => return Err(damage),
            }
        }
        let i = match known {
            Some(i) => i,
            None => {
                self.streams.insert(stream.into(), self.built.len());
                self.built.push(Built {
                    entry: StreamEntry::continuing(head),
                    in_base,
                });
                self.built.len() - 1
            }
        };
        let entry = &mut self.built[i].entry;
        if let Some(from) = removed_from {
            // No layer holds the removed versions' checkpoints: reads never reach them
            // (retention hides them), so they name no event.
            let before = from
                .checked_sub(1)
                .map_or(0, StreamEntry::expected_checkpoints);
            let missing = StreamEntry::expected_checkpoints(version - 1) - before;
            entry
                .checkpoints
                .extend(std::iter::repeat_n(NO_PREV, missing as usize));
            entry.last_version = version - 1;
            entry.last_location = prev;
        }
        Ok(entry)
    }

    /// The finished live layer. Each stream goes where the snapshot has it; a new one takes
    /// its hash unless the snapshot or an earlier new stream owns it.
    pub fn finish(self) -> Result<Layer> {
        let mut layer = Layer::default();
        layer.by_hash.reserve(self.streams.len());
        let mut new = Vec::new();
        let mut all = self.built;
        for (name, i) in self.streams {
            let mut built = std::mem::take(&mut all[i]);
            built.entry.checkpoints.shrink_to_fit();
            match built.in_base {
                Some(Slot::Hashed(hash)) => {
                    layer.by_hash.insert(hash, built.entry);
                }
                Some(Slot::Collided) => {
                    layer.collided.insert(name, built.entry);
                }
                None => new.push((name, built.entry)),
            }
        }
        layer.new_streams = new.len();
        for (name, entry) in new {
            let hash = (self.hasher)(&name);
            let owned = match self.base {
                Some(base) => base.stream(hash)?.is_some(),
                None => false,
            };
            if owned || layer.by_hash.contains_key(&hash) {
                layer.collided.insert(name, entry);
            } else {
                layer.by_hash.insert(hash, entry);
            }
        }
        Ok(layer)
    }
}

/// Whether an event with `version` and back pointer `prev` continues a stream whose head is
/// `head` (`None`: no events yet); the damage if not.
fn check_continues(stream: &str, version: u64, prev: u64, head: Option<Head>) -> Option<Damage> {
    let (next_version, last_location) = match head {
        // A stream whose last version (read from a damaged file) is the largest has no next.
        Some(h) => (h.last_version.checked_add(1), h.last_location),
        None => (Some(0), NO_PREV),
    };
    let (what, found, expected) = if next_version != Some(version) {
        ("version", version, next_version.unwrap_or(u64::MAX))
    } else if prev != last_location {
        ("back pointer", prev, last_location)
    } else {
        return None;
    };
    Some(Damage::Discontinuous {
        stream: stream.into(),
        what,
        found,
        expected,
    })
}
