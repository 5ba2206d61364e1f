//! The per-stream sparse offset index.
//!
//! For each stream it keeps the version and location of the stream's last event (the head of
//! its back-pointer chain) and, for every [`CHECKPOINT_INTERVAL`]-th version, that event's
//! location. Any version is then at most `CHECKPOINT_INTERVAL - 1` back-pointer hops from an
//! entry, so reading `n` events of a stream costs `O(n + CHECKPOINT_INTERVAL)` record reads
//! and one hash lookup, never a scan of the log.
//!
//! Streams are keyed by a 64-bit hash of their name; names are not kept in memory. Two names
//! can hash alike, so every lookup verifies the name in the record at the entry's head
//! location (a caller-supplied check), and a stream whose hash is taken by another stream
//! lives in a small map keyed by its full name.
//!
//! The index has up to three layers, newest first: `live` (in memory: the streams appended to
//! since the last snapshot began), `frozen` (in memory: the layer a background thread is
//! writing into a new snapshot) and `base` (the index snapshot, read through its map: see
//! [`mapped`] and [`persist`]). A stream's entry in a layer holds its checkpoints from
//! `cp_base` on; older ones are in the layers below. Which stream owns a hash is settled once,
//! by the first stream to take it, and holds in every layer. In-memory entries take about
//! 72 bytes of table plus 8 bytes per checkpoint; the base takes no heap at all.
//!
//! This folder owns every index kept beside the log: the stream index (here and in
//! [`builder`], [`layers`]), the index snapshot ([`mapped`], [`persist`]), the sealed
//! segments' side files ([`side_file`]), the events by type and category ([`postings`]), the
//! window of event ids ([`ids`]) and the hashes they use (`hash`). May import `format`, `fs` and `log`.

pub(crate) mod builder;
mod hash;
pub(crate) mod ids;
pub(crate) mod layers;
pub(crate) mod mapped;
pub(crate) mod persist;
pub(crate) mod postings;
pub(crate) mod side_file;

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::Result;
pub use hash::{
    default_stream_hash, mix64, HashKeyed, NameHasher, NameKeyed, PassThrough, StreamHasher,
};
use layers::Layers;
use mapped::{BaseEntry, MappedIndex};

/// Every this many versions of a stream, the index keeps the event's location.
pub const CHECKPOINT_INTERVAL: u64 = 32;

/// Whether the index keeps the location of a stream's event `version`.
pub fn is_checkpoint(version: u64) -> bool {
    // Written so that no version read from a damaged file can overflow it.
    version % CHECKPOINT_INTERVAL == CHECKPOINT_INTERVAL - 1
}

/// What an in-memory layer holds for one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamEntry {
    /// Version of the stream's last event.
    pub last_version: u64,
    /// Location of the stream's last event.
    pub last_location: u64,
    /// Number of the stream's checkpoints that the layers below hold.
    pub cp_base: u64,
    /// `checkpoints[j]` is the location of version `(cp_base + j + 1) * CHECKPOINT_INTERVAL - 1`.
    pub checkpoints: Vec<u64>,
}

impl StreamEntry {
    /// An entry continuing `below` (the stream's head in the layers below), or a new stream.
    pub fn continuing(below: Option<Head>) -> Self {
        match below {
            Some(h) => StreamEntry {
                last_version: h.last_version,
                last_location: h.last_location,
                cp_base: StreamEntry::expected_checkpoints(h.last_version),
                checkpoints: Vec::new(),
            },
            None => StreamEntry::default(),
        }
    }

    /// Records that the stream's event `version` is at `location` (versions in order).
    pub fn push(&mut self, version: u64, location: u64) {
        if is_checkpoint(version) {
            // Grow one by one while short: most streams have few checkpoints, and the default
            // doubling would leave most of a small allocation unused.
            if self.checkpoints.len() < 8 {
                self.checkpoints.reserve_exact(1);
            }
            self.checkpoints.push(location);
        }
        self.last_version = version;
        self.last_location = location;
    }

    /// The stream's head.
    pub fn head(&self) -> Head {
        Head {
            last_version: self.last_version,
            last_location: self.last_location,
        }
    }

    /// Number of checkpoints a stream whose last version is `last_version` has.
    pub fn expected_checkpoints(last_version: u64) -> u64 {
        // Written so that no version read from a damaged file can overflow it.
        last_version / CHECKPOINT_INTERVAL
            + u64::from(last_version % CHECKPOINT_INTERVAL == CHECKPOINT_INTERVAL - 1)
    }
}

/// The last event of a stream: its version and location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Version of the stream's last event.
    pub last_version: u64,
    /// Location of the stream's last event.
    pub last_location: u64,
}

impl From<BaseEntry> for Head {
    fn from(e: BaseEntry) -> Head {
        Head {
            last_version: e.last_version,
            last_location: e.last_location,
        }
    }
}

/// A stream found in the index: its head, and the way to its checkpoints.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    index: &'a StreamIndex,
    stream: &'a str,
    slot: Slot,
    /// The stream's last event.
    pub head: Head,
}

impl Found<'_> {
    /// The locations of the stream's checkpoints from checkpoint `from` on.
    pub fn checkpoints_from(&self, from: u64) -> Result<Vec<u64>> {
        self.index
            .checkpoints(self.stream, self.slot, self.head, from)
    }

    /// The nearest indexed event at or above `version` (which must not exceed the last
    /// version): its version and location. Walking back pointers from it reaches `version`
    /// in fewer than [`CHECKPOINT_INTERVAL`] hops.
    pub fn walk_start(&self, version: u64) -> Result<(u64, u64)> {
        let j = version / CHECKPOINT_INTERVAL;
        if j < StreamEntry::expected_checkpoints(self.head.last_version) {
            if let Some(&location) = self.checkpoints_from(j)?.first() {
                return Ok(((j + 1) * CHECKPOINT_INTERVAL - 1, location));
            }
        }
        Ok((self.head.last_version, self.head.last_location))
    }
}

/// Where a stream's entry lives (or will live), as found by [`StreamIndex::find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Under this hash (the stream owns it, or it is free).
    Hashed(u64),
    /// Among the streams whose hash another stream owns, by full name.
    Collided,
}

/// An in-memory layer of the index.
#[derive(Debug, Default, Clone)]
pub struct Layer {
    /// Entries of the streams that own their hash.
    pub by_hash: HashKeyed<StreamEntry>,
    /// Entries of the streams whose hash another stream owns.
    pub collided: HashMap<Box<str>, StreamEntry>,
    /// Streams of this layer that no layer below has.
    pub new_streams: usize,
}

impl Layer {
    /// The entry of `stream` found at `slot`.
    pub fn get(&self, slot: Slot, stream: &str) -> Option<&StreamEntry> {
        match slot {
            Slot::Hashed(hash) => self.by_hash.get(&hash),
            Slot::Collided => self.collided.get(stream),
        }
    }

    /// Bytes the layer holds on the heap: table slots, control bytes and checkpoint lists
    /// (allocator overhead not included).
    pub fn heap_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u64, StreamEntry)>() + 1;
        let collided_slot = std::mem::size_of::<(Box<str>, StreamEntry)>() + 1;
        let checkpoints = self
            .by_hash
            .values()
            .chain(self.collided.values())
            .map(|e| e.checkpoints.capacity() * 8)
            .sum::<usize>();
        let names = self.collided.keys().map(|k| k.len()).sum::<usize>();
        self.by_hash.capacity() * slot
            + self.collided.capacity() * collided_slot
            + checkpoints
            + names
    }

    /// Puts `newer` (a layer that was above this one) on top of it: entries of `newer`
    /// continue this layer's.
    fn absorb(&mut self, newer: Layer) {
        fn merge(below: &mut StreamEntry, mut above: StreamEntry) {
            let keep = above.cp_base.saturating_sub(below.cp_base) as usize;
            below.checkpoints.truncate(keep);
            below.checkpoints.append(&mut above.checkpoints);
            below.last_version = above.last_version;
            below.last_location = above.last_location;
        }
        for (hash, entry) in newer.by_hash {
            match self.by_hash.get_mut(&hash) {
                Some(below) => merge(below, entry),
                None => {
                    self.by_hash.insert(hash, entry);
                }
            }
        }
        for (name, entry) in newer.collided {
            match self.collided.get_mut(&name) {
                Some(below) => merge(below, entry),
                None => {
                    self.collided.insert(name, entry);
                }
            }
        }
        self.new_streams += newer.new_streams;
    }
}

/// The index of every stream in the store.
#[derive(Debug)]
pub struct StreamIndex {
    hasher: StreamHasher,
    base: Option<Arc<MappedIndex>>,
    layers: Layers<Layer>,
}

impl StreamIndex {
    /// An index of `live` over `base`, hashing names with `hasher`.
    pub fn new(hasher: StreamHasher, base: Option<Arc<MappedIndex>>, live: Layer) -> Self {
        StreamIndex {
            hasher,
            base,
            layers: Layers::new(live),
        }
    }

    /// The in-memory layers, newest first.
    fn layers(&self) -> impl Iterator<Item = &Layer> {
        self.layers.iter()
    }

    /// Finds `stream`: where its entry lives and its head. `is_at(location, stream, version)`
    /// must say whether the record at `location` belongs to `stream` (and fail if it does but
    /// is not that version); it settles which of the streams sharing a hash an entry is for.
    pub fn find(
        &self,
        stream: &str,
        is_at: impl Fn(u64, &str, u64) -> Result<bool>,
    ) -> Result<(Slot, Option<Head>)> {
        let hash = (self.hasher)(stream);
        let owner = match self.layers().find_map(|l| l.by_hash.get(&hash)) {
            Some(entry) => Some(entry.head()),
            None => match &self.base {
                Some(base) => base.stream(hash)?.map(Head::from),
                None => None,
            },
        };
        match owner {
            None => Ok((Slot::Hashed(hash), None)),
            Some(head) if is_at(head.last_location, stream, head.last_version)? => {
                Ok((Slot::Hashed(hash), Some(head)))
            }
            Some(_) => {
                let head = match self.layers().find_map(|l| l.collided.get(stream)) {
                    Some(entry) => Some(entry.head()),
                    None => self
                        .base
                        .as_ref()
                        .and_then(|b| b.collided(stream))
                        .map(Head::from),
                };
                // An entry whose last event erasure removed is no stream (any more).
                let head = match head {
                    Some(h) if is_at(h.last_location, stream, h.last_version)? => Some(h),
                    _ => None,
                };
                Ok((Slot::Collided, head))
            }
        }
    }

    /// Finds `stream` for reading (see [`StreamIndex::find`]).
    pub fn lookup<'a>(
        &'a self,
        stream: &'a str,
        is_at: impl Fn(u64, &str, u64) -> Result<bool>,
    ) -> Result<Option<Found<'a>>> {
        let (slot, head) = self.find(stream, is_at)?;
        Ok(head.map(|head| Found {
            index: self,
            stream,
            slot,
            head,
        }))
    }

    /// Records the events of one append: `stream`'s versions from `first_version` on are at
    /// `locations`, in order. `slot` and `below` (the stream's head before the append) come
    /// from [`StreamIndex::find`] for the same stream, with no other append to it in between.
    pub fn append(
        &mut self,
        stream: &str,
        slot: Slot,
        below: Option<Head>,
        first_version: u64,
        locations: &[u64],
    ) {
        let live = &mut self.layers.live;
        let entry = match slot {
            Slot::Hashed(hash) => live.by_hash.entry(hash).or_insert_with(|| {
                live.new_streams += usize::from(below.is_none());
                StreamEntry::continuing(below)
            }),
            Slot::Collided => {
                if below.is_none() {
                    // A stream erased and started anew: nothing of the old entry continues.
                    live.collided.remove(stream);
                }
                live.collided.entry(stream.into()).or_insert_with(|| {
                    live.new_streams += usize::from(below.is_none());
                    StreamEntry::continuing(below)
                })
            }
        };
        for (version, &location) in (first_version..).zip(locations) {
            entry.push(version, location);
        }
    }

    /// The locations of the checkpoints of `stream` (found at `slot`, with head `head`) from
    /// checkpoint `from` on: checkpoint `j` is version `(j + 1) * CHECKPOINT_INTERVAL - 1`.
    pub fn checkpoints(&self, stream: &str, slot: Slot, head: Head, from: u64) -> Result<Vec<u64>> {
        let mut hi = StreamEntry::expected_checkpoints(head.last_version);
        let mut pieces: Vec<&[u64]> = Vec::new();
        for entry in self.layers().filter_map(|l| l.get(slot, stream)) {
            if hi <= from {
                break;
            }
            let lo = entry.cp_base.max(from);
            if lo < hi {
                let range = (lo - entry.cp_base) as usize..(hi - entry.cp_base) as usize;
                let piece = entry.checkpoints.get(range).ok_or_else(|| {
                    crate::Error::InvalidInput(format!(
                        "stream index: the checkpoints of {stream:?} do not line up"
                    ))
                })?;
                pieces.push(piece);
            }
            hi = hi.min(entry.cp_base);
        }
        let mut out = match (&self.base, hi > from) {
            (Some(base), true) => {
                let entry = match slot {
                    Slot::Hashed(hash) => base.stream(hash)?,
                    Slot::Collided => base.collided(stream),
                };
                match entry {
                    Some(entry) => base.checkpoints(&entry, from, hi)?,
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        for piece in pieces.into_iter().rev() {
            out.extend_from_slice(piece);
        }
        Ok(out)
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        let below = self
            .base
            .as_ref()
            .map_or(0, |b| b.header().streams as usize);
        below + self.layers().map(|l| l.new_streams).sum::<usize>()
    }

    /// Bytes the in-memory layers hold on the heap (allocator overhead not included); the
    /// base is read through its map and takes none.
    pub fn heap_bytes(&self) -> usize {
        self.layers().map(Layer::heap_bytes).sum()
    }

    /// The hash of stream names in use.
    pub fn hasher(&self) -> StreamHasher {
        self.hasher
    }

    /// The index snapshot under the in-memory layers, if any.
    pub fn base(&self) -> Option<&Arc<MappedIndex>> {
        self.base.as_ref()
    }

    /// Makes the live layer the frozen one, for a snapshot to be written from, and returns it
    /// (`None` if a layer is frozen already).
    pub fn freeze(&mut self) -> Option<Arc<Layer>> {
        self.layers.freeze(Layer::default())
    }

    /// A snapshot of the base and the frozen layer is in place: it becomes the base. Returns
    /// the frozen layer, for the caller to free outside the index's lock.
    pub fn install(&mut self, base: Arc<MappedIndex>) -> Option<Arc<Layer>> {
        self.base = Some(base);
        self.layers.frozen.take()
    }

    /// Writing the snapshot failed: the frozen layer goes back under the live one.
    pub fn thaw(&mut self) {
        self.layers.thaw(Layer::absorb);
    }
}

#[cfg(test)]
mod tests {
    use super::builder::IndexBuilder;
    use super::ids::IdRing;
    use super::persist::{self, SnapshotInput};
    use super::*;
    use crate::format::{Damage, SegmentEnd, NO_PREV};

    #[test]
    fn expected_checkpoints_counts_every_interval_and_never_overflows() {
        for v in 0..10 * CHECKPOINT_INTERVAL {
            assert_eq!(
                StreamEntry::expected_checkpoints(v),
                (v + 1) / CHECKPOINT_INTERVAL
            );
        }
        let top = StreamEntry::expected_checkpoints(u64::MAX);
        assert_eq!(top, u64::MAX / CHECKPOINT_INTERVAL + 1);
    }

    #[test]
    fn versions_read_from_damaged_files_never_overflow() {
        for v in 0..4 * CHECKPOINT_INTERVAL {
            assert_eq!(is_checkpoint(v), (v + 1) % CHECKPOINT_INTERVAL == 0);
        }
        assert!(is_checkpoint(u64::MAX));
        let mut b = IndexBuilder::new(default_stream_hash, None);
        let refused = b.add_span("s", 0, NO_PREV, u64::MAX, 7, &[]).unwrap_err();
        assert!(matches!(refused, Damage::Discontinuous { .. }));
        let refused = b.add_event("t", u64::MAX, NO_PREV, 9).unwrap_err();
        assert!(matches!(
            refused,
            Damage::Discontinuous {
                what: "version",
                ..
            }
        ));
    }

    fn same_hash(_: &str) -> u64 {
        42
    }

    /// A fake log: which stream each location holds.
    struct Names(HashMap<u64, String>);

    impl Names {
        fn is_at(&self) -> impl Fn(u64, &str, u64) -> Result<bool> + '_ {
            |loc, stream, _| Ok(self.0.get(&loc).map(String::as_str) == Some(stream))
        }
    }

    /// Appends one event to each stream in turn, `rounds` times, from location `*loc` on.
    fn append_rounds(
        index: &mut StreamIndex,
        names: &mut Names,
        streams: &[&str],
        rounds: std::ops::Range<u64>,
        loc: &mut u64,
    ) {
        for round in rounds {
            for &stream in streams {
                let (slot, head) = index.find(stream, names.is_at()).unwrap();
                let version = head.map_or(0, |h| h.last_version + 1);
                assert_eq!(version, round, "stream {stream}");
                names.0.insert(*loc, stream.to_string());
                index.append(stream, slot, head, version, &[*loc]);
                *loc += 1;
            }
        }
    }

    /// Checks every stream's head and checkpoints after `rounds` rounds of `append_rounds`
    /// from location 100.
    fn check_rounds(index: &StreamIndex, names: &Names, streams: &[&str], rounds: u64) {
        let n = streams.len() as u64;
        for (i, &stream) in (0u64..).zip(streams) {
            let found = index.lookup(stream, names.is_at()).unwrap().unwrap();
            assert_eq!(found.head.last_version, rounds - 1);
            assert_eq!(found.head.last_location, 100 + (rounds - 1) * n + i);
            let expected: Vec<u64> = (0..rounds)
                .filter(|&v| is_checkpoint(v))
                .map(|v| 100 + v * n + i)
                .collect();
            assert_eq!(found.checkpoints_from(0).unwrap(), expected, "{stream}");
            assert_eq!(
                found.checkpoints_from(1).unwrap(),
                expected[1.min(expected.len())..]
            );
            for v in 0..rounds {
                let (top, loc) = found.walk_start(v).unwrap();
                assert!(top >= v && top - v < CHECKPOINT_INTERVAL, "{v} -> {top}");
                assert_eq!(loc, 100 + top * n + i);
            }
        }
    }

    #[test]
    fn streams_that_hash_alike_never_mix() {
        let mut names = Names(HashMap::new());
        let mut index = StreamIndex::new(same_hash, None, Layer::default());
        let mut loc = 100;
        let streams = ["a", "b", "c"];
        append_rounds(&mut index, &mut names, &streams, 0..80, &mut loc);
        assert_eq!(index.len(), 3);
        check_rounds(&index, &names, &streams, 80);
        assert!(index.find("d", names.is_at()).unwrap().1.is_none());
    }

    /// Writes a snapshot of `index`'s base and live layer into `dir` and installs it.
    fn snapshot(index: &mut StreamIndex, dir: &std::path::Path, hasher: StreamHasher) {
        let streams = index.freeze().unwrap();
        let input = SnapshotInput {
            hasher,
            end_position: 1,
            segments: vec![SegmentEnd::default()],
            base: index.base().cloned(),
            streams,
            ids: Arc::new(IdRing::default()),
            window: 0,
            erased: Vec::new(),
        };
        let written = persist::write(dir, &input).unwrap();
        index.install(Arc::new(written));
    }

    #[test]
    fn layers_over_snapshots_read_like_one_index_even_when_hashes_collide() {
        for hasher in [same_hash as StreamHasher, default_stream_hash] {
            let dir = tempfile::tempdir().unwrap();
            let mut names = Names(HashMap::new());
            let mut index = StreamIndex::new(hasher, None, Layer::default());
            let mut loc = 100;
            let streams = ["a", "b", "c", "d"];
            append_rounds(&mut index, &mut names, &streams, 0..40, &mut loc);
            snapshot(&mut index, dir.path(), hasher);
            assert_eq!(index.heap_bytes(), 0, "everything is in the snapshot");
            check_rounds(&index, &names, &streams, 40);
            append_rounds(&mut index, &mut names, &streams, 40..70, &mut loc);
            // A frozen layer, then a live one above it.
            let frozen = index.freeze().unwrap();
            assert!(index.freeze().is_none());
            append_rounds(&mut index, &mut names, &streams, 70..100, &mut loc);
            check_rounds(&index, &names, &streams, 100);
            // Writing failed: the frozen layer goes back under the live one.
            drop(frozen);
            index.thaw();
            check_rounds(&index, &names, &streams, 100);
            snapshot(&mut index, dir.path(), hasher);
            check_rounds(&index, &names, &streams, 100);
            assert_eq!(index.len(), 4);
            // A new stream after the snapshot.
            append_rounds(&mut index, &mut names, &["e"], 0..1, &mut loc);
            assert_eq!(index.len(), 5);
        }
    }

    #[test]
    fn the_builder_rejects_gaps_and_the_finished_index_resolves_collisions() {
        let mut b = IndexBuilder::new(same_hash, None);
        b.add_event("a", 0, NO_PREV, 10).unwrap();
        b.add_event("a", 1, 10, 20).unwrap();
        assert!(b.add_event("a", 3, 20, 30).is_err());
        assert!(b.add_event("a", 2, 11, 30).is_err());
        b.add_event("b", 0, NO_PREV, 15).unwrap();
        let names = Names(HashMap::from([(20, "a".into()), (15, "b".into())]));
        let index = StreamIndex::new(same_hash, None, b.finish().unwrap());
        let (_, a) = index.find("a", names.is_at()).unwrap();
        let (_, bb) = index.find("b", names.is_at()).unwrap();
        assert_eq!(a.unwrap().last_location, 20);
        assert_eq!(bb.unwrap().last_location, 15);
    }
}
