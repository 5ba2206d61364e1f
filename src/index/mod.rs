//! The per-stream sparse offset index, resident in memory.
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
//! lives in a small map keyed by its full name. Entries take about 64 bytes of table plus
//! 8 bytes per checkpoint: under 1 byte per event for streams of 100 events.
//!
//! This folder owns every index kept beside the log: the stream index (here), the sealed
//! segments' side files ([`side_file`]) and the window of event ids ([`ids`]). May import
//! `format`, `fs` and `log`.

pub(crate) mod ids;
pub(crate) mod side_file;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::Result;
use crate::format::{Damage, NO_PREV};

/// Every this many versions of a stream, the index keeps the event's location.
pub const CHECKPOINT_INTERVAL: u64 = 32;

/// Whether the index keeps the location of a stream's event `version`.
pub fn is_checkpoint(version: u64) -> bool {
    // Written so that no version read from a damaged file can overflow it.
    version % CHECKPOINT_INTERVAL == CHECKPOINT_INTERVAL - 1
}

/// Hashes a stream name for the index. Replaceable in tests to force collisions.
pub type StreamHasher = fn(&str) -> u64;

/// The default stream hash: FNV-1a over the name's bytes, then a 64-bit finaliser so that all
/// bits mix.
pub fn default_stream_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// The murmur3 64-bit finaliser.
pub fn mix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A hasher for keys that are hashes already.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by a hash that is used as it is.
pub type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;

/// What the index holds for one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamEntry {
    /// Version of the stream's last event.
    pub last_version: u64,
    /// Location of the stream's last event.
    pub last_location: u64,
    /// `checkpoints[j]` is the location of version `(j + 1) * CHECKPOINT_INTERVAL - 1`.
    pub checkpoints: Vec<u64>,
}

impl StreamEntry {
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

    /// The nearest indexed event at or above `version` (which must not exceed the last
    /// version): its version and location. Walking back pointers from it reaches `version`
    /// in fewer than [`CHECKPOINT_INTERVAL`] hops.
    pub fn walk_start(&self, version: u64) -> (u64, u64) {
        let j = version / CHECKPOINT_INTERVAL;
        match usize::try_from(j)
            .ok()
            .and_then(|j| self.checkpoints.get(j))
        {
            Some(&location) => ((j + 1) * CHECKPOINT_INTERVAL - 1, location),
            None => (self.last_version, self.last_location),
        }
    }

    /// Number of checkpoints a stream whose last version is `last_version` has.
    pub fn expected_checkpoints(last_version: u64) -> u64 {
        // Written so that no version read from a damaged file can overflow it.
        last_version / CHECKPOINT_INTERVAL
            + u64::from(last_version % CHECKPOINT_INTERVAL == CHECKPOINT_INTERVAL - 1)
    }
}

/// Where a stream's entry lives (or will live), as found by [`StreamIndex::find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// In the hash-keyed table under this hash (the stream owns it, or it is free).
    Hashed(u64),
    /// In the map of streams whose hash another stream owns.
    Collided,
}

/// The sparse index of every stream in the store.
#[derive(Debug)]
pub struct StreamIndex {
    hasher: StreamHasher,
    by_hash: HashKeyed<StreamEntry>,
    collided: HashMap<Box<str>, StreamEntry>,
}

impl StreamIndex {
    /// An empty index using `hasher` for stream names.
    pub fn new(hasher: StreamHasher) -> Self {
        StreamIndex {
            hasher,
            by_hash: HashKeyed::default(),
            collided: HashMap::new(),
        }
    }

    /// Finds `stream`. `is_at(location, stream)` must say whether the record at `location`
    /// belongs to `stream`; it settles which of the streams sharing a hash an entry is for.
    pub fn find(
        &self,
        stream: &str,
        is_at: impl Fn(u64, &str) -> Result<bool>,
    ) -> Result<(Slot, Option<&StreamEntry>)> {
        let hash = (self.hasher)(stream);
        match self.by_hash.get(&hash) {
            None => Ok((Slot::Hashed(hash), None)),
            Some(entry) if is_at(entry.last_location, stream)? => {
                Ok((Slot::Hashed(hash), Some(entry)))
            }
            Some(_) => Ok((Slot::Collided, self.collided.get(stream))),
        }
    }

    /// Records the events of one append: `stream`'s versions from `first_version` on are at
    /// `locations`, in order. `slot` comes from [`StreamIndex::find`] for the same stream,
    /// with no other append to it in between.
    pub fn append(&mut self, stream: &str, slot: Slot, first_version: u64, locations: &[u64]) {
        let entry = match slot {
            Slot::Hashed(hash) => self.by_hash.entry(hash).or_default(),
            Slot::Collided => self.collided.entry(stream.into()).or_default(),
        };
        for (version, &location) in (first_version..).zip(locations) {
            entry.push(version, location);
        }
    }

    /// Number of streams.
    pub fn len(&self) -> usize {
        self.by_hash.len() + self.collided.len()
    }

    /// Bytes the index holds on the heap: table slots, control bytes and checkpoint lists
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
}

/// Builds a [`StreamIndex`] while opening a store, keyed by full names (known then from the
/// index side files and the tail scan), checking that each stream's versions and back pointers
/// continue where they left off.
#[derive(Debug, Default)]
pub struct IndexBuilder {
    streams: HashMap<Box<str>, StreamEntry>,
}

impl IndexBuilder {
    /// Adds one event; the error says how it fails to continue its stream.
    pub fn add_event(
        &mut self,
        stream: &str,
        version: u64,
        prev: u64,
        location: u64,
    ) -> std::result::Result<(), Damage> {
        self.entry_continued(stream, version, prev)?
            .push(version, location);
        Ok(())
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
    ) -> std::result::Result<(), Damage> {
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
        let entry = self.entry_continued(stream, first_version, first_prev)?;
        entry.checkpoints.extend_from_slice(checkpoints);
        entry.last_version = last_version;
        entry.last_location = last_location;
        Ok(())
    }

    /// The entry that an event of `stream` with this version and back pointer continues
    /// (a new one for version 0 of a new stream).
    fn entry_continued(
        &mut self,
        stream: &str,
        version: u64,
        prev: u64,
    ) -> std::result::Result<&mut StreamEntry, Damage> {
        let (last_version, last_location) = match self.streams.get(stream) {
            Some(e) => (Some(e.last_version), e.last_location),
            None => (None, NO_PREV),
        };
        // A stream whose last version (read from a damaged file) is the largest has no next.
        let next_version = last_version.map_or(Some(0), |v| v.checked_add(1));
        let broken = |what, found, expected| Damage::Discontinuous {
            stream: stream.into(),
            what,
            found,
            expected,
        };
        let Some(next_version) = next_version.filter(|&next| next == version) else {
            return Err(broken("version", version, next_version.unwrap_or(u64::MAX)));
        };
        if prev != last_location {
            return Err(broken("back pointer", prev, last_location));
        }
        if last_version.is_none() {
            self.streams.insert(stream.into(), StreamEntry::default());
        }
        // Present: found above, or inserted just now.
        self.streams
            .get_mut(stream)
            .ok_or_else(|| broken("version", version, next_version))
    }

    /// The finished index, keyed by hashes from `hasher`.
    pub fn finish(self, hasher: StreamHasher) -> StreamIndex {
        let mut index = StreamIndex::new(hasher);
        index.by_hash.reserve(self.streams.len());
        for (name, mut entry) in self.streams {
            entry.checkpoints.shrink_to_fit();
            let hash = hasher(&name);
            if let std::collections::hash_map::Entry::Vacant(slot) = index.by_hash.entry(hash) {
                slot.insert(entry);
            } else {
                index.collided.insert(name, entry);
            }
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut b = IndexBuilder::default();
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
    struct Names(HashMap<u64, &'static str>);

    impl Names {
        fn is_at(&self) -> impl Fn(u64, &str) -> Result<bool> + '_ {
            |loc, stream| Ok(self.0.get(&loc) == Some(&stream))
        }
    }

    #[test]
    fn streams_that_hash_alike_never_mix() {
        let mut names = Names(HashMap::new());
        let mut index = StreamIndex::new(same_hash);
        let mut loc = 100;
        for round in 0..40u64 {
            for stream in ["a", "b", "c"] {
                let (slot, entry) = index.find(stream, names.is_at()).unwrap();
                let version = entry.map_or(0, |e| e.last_version + 1);
                assert_eq!(version, round, "stream {stream}");
                names.0.insert(loc, stream);
                index.append(stream, slot, version, &[loc]);
                loc += 1;
            }
        }
        assert_eq!(index.len(), 3);
        for (i, stream) in ["a", "b", "c"].into_iter().enumerate() {
            let (_, entry) = index.find(stream, names.is_at()).unwrap();
            let entry = entry.unwrap();
            assert_eq!(entry.last_version, 39);
            assert_eq!(entry.last_location, 100 + 39 * 3 + i as u64);
            // Version 31 was appended in round 31.
            assert_eq!(entry.checkpoints, [100 + 31 * 3 + i as u64]);
        }
        assert!(index.find("d", names.is_at()).unwrap().1.is_none());
    }

    #[test]
    fn walk_start_is_within_one_interval() {
        let mut e = StreamEntry::default();
        for v in 0..100 {
            e.push(v, 1000 + v);
        }
        assert_eq!(e.checkpoints.len(), 3);
        for v in 0..100 {
            let (top, loc) = e.walk_start(v);
            assert!(top >= v && top - v < CHECKPOINT_INTERVAL, "{v} -> {top}");
            assert_eq!(loc, 1000 + top);
        }
    }

    #[test]
    fn the_builder_rejects_gaps_and_the_finished_index_resolves_collisions() {
        let mut b = IndexBuilder::default();
        b.add_event("a", 0, NO_PREV, 10).unwrap();
        b.add_event("a", 1, 10, 20).unwrap();
        assert!(b.add_event("a", 3, 20, 30).is_err());
        assert!(b.add_event("a", 2, 11, 30).is_err());
        b.add_event("b", 0, NO_PREV, 15).unwrap();
        let names = Names(HashMap::from([(20, "a"), (15, "b")]));
        let index = b.finish(same_hash);
        let (_, a) = index.find("a", names.is_at()).unwrap();
        let (_, bb) = index.find("b", names.is_at()).unwrap();
        assert_eq!(a.unwrap().last_location, 20);
        assert_eq!(bb.unwrap().last_location, 15);
    }
}
