//! The window of remembered event ids, for idempotent appends.
//!
//! It remembers the locations of the most recent `dedup_window` events that carry an id
//! (which covers every id among the most recent `dedup_window` events). Each id is keyed by a
//! 64-bit hash of (stream, id); a hit is only a candidate: the writer reads the record at the
//! location and checks that it is that stream's event with that id.
//!
//! Like the stream index it has layers, newest first: `live`, `frozen` (being written into a
//! snapshot) and the ids of the index snapshot (`base`, read through its map). Every id gets a
//! sequence number, counted across the layers, so the window is exact: an id is remembered
//! while fewer than `dedup_window` ids came after it. Memory of the in-memory layers: a 16-byte
//! ring entry plus a 16-byte table slot and a control byte per id, with the table at most 7/8
//! full and at least about 7/16 full: 35 to 55 bytes per id remembered since the snapshot,
//! plus a filter of 2 bytes per id of the window that answers most lookups of new ids alone.
//!
//! Two (stream, id) pairs whose keys collide within the window make the older one forgotten
//! early (odds about n² / 2^65 for n remembered ids).

use std::cell::OnceCell;
use std::collections::VecDeque;
use std::sync::Arc;

use crate::error::Result;
use crate::index::layers::Layers;
use crate::index::mapped::MappedIndex;
use crate::index::{default_stream_hash, mix64, HashKeyed};

/// The key of `id` in `stream`.
pub fn id_key(stream: &str, id: u128) -> u64 {
    let s = default_stream_hash(stream);
    mix64(s ^ mix64(id as u64 ^ mix64((id >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15)))
}

/// Ids in append order with their sequence numbers, and a table from key to the newest.
#[derive(Debug, Default, Clone)]
pub struct IdRing {
    /// Sequence number of `ring[0]`.
    first_seq: u64,
    /// (key, location), oldest first.
    ring: VecDeque<(u64, u64)>,
    /// key -> sequence number of the newest id with that key.
    map: HashKeyed<u64>,
}

impl IdRing {
    /// An empty ring whose first id gets sequence number `first_seq`.
    fn starting_at(first_seq: u64) -> Self {
        IdRing {
            first_seq,
            ..IdRing::default()
        }
    }

    /// The sequence number the next id gets.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.ring.len() as u64
    }

    /// The ids with sequence number at least `from`, oldest first, as (key, location).
    pub fn ids_from(&self, from: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let skip = from.saturating_sub(self.first_seq) as usize;
        self.ring.iter().skip(skip).copied()
    }

    fn get(&self, key: u64) -> Option<(u64, u64)> {
        let seq = *self.map.get(&key)?;
        let &(_, location) = self.ring.get((seq - self.first_seq) as usize)?;
        Some((seq, location))
    }

    /// Appends an id, forgetting the oldest once `capacity` are held.
    fn push(&mut self, key: u64, location: u64, capacity: usize) {
        if self.ring.len() >= capacity {
            let oldest = self.first_seq;
            if let Some((old_key, _)) = self.ring.pop_front() {
                self.first_seq += 1;
                if self.map.get(&old_key) == Some(&oldest) {
                    self.map.remove(&old_key);
                }
            }
        }
        let seq = self.next_seq();
        self.ring.push_back((key, location));
        self.map.insert(key, seq);
    }

    fn heap_bytes(&self) -> usize {
        self.ring.capacity() * 16 + self.map.capacity() * 17
    }
}

/// A blocked Bloom filter over id keys: one 64-bit word per key, three bits in it. Most ids
/// an append carries are new, and each layer's lookup of a new id is a cache miss; one word
/// read answers "not remembered" for nearly all of them (a few in a hundred pass through at
/// four to six keys per word).
#[derive(Debug, Clone)]
struct IdFilter {
    words: Vec<u64>,
    /// Keys added since it was built: once they are half as many as the window holds,
    /// evicted ids crowd it and it is built again.
    added: usize,
}

impl IdFilter {
    fn new(capacity: usize) -> Self {
        let words = (capacity / 4).clamp(64, 1 << 26).next_power_of_two();
        IdFilter {
            words: vec![0; words],
            added: 0,
        }
    }

    fn word_and_bits(&self, key: u64) -> (usize, u64) {
        let word = (key as usize) & (self.words.len() - 1);
        let bits =
            (1 << ((key >> 40) & 63)) | (1 << ((key >> 46) & 63)) | (1 << ((key >> 52) & 63));
        (word, bits)
    }

    fn add(&mut self, key: u64) {
        let (word, bits) = self.word_and_bits(key);
        self.words[word] |= bits;
        self.added += 1;
    }

    fn may_hold(&self, key: u64) -> bool {
        let (word, bits) = self.word_and_bits(key);
        self.words[word] & bits == bits
    }
}

/// Remembered ids and where their events are.
#[derive(Debug)]
pub struct IdWindow {
    capacity: usize,
    base: Option<Arc<MappedIndex>>,
    layers: Layers<IdRing>,
    /// Every key the layers hold (and some they no longer do), built at the first lookup.
    filter: OnceCell<IdFilter>,
}

impl IdWindow {
    /// A window remembering up to `capacity` ids, over the ids of `base`.
    pub fn new(capacity: u64, base: Option<Arc<MappedIndex>>) -> Self {
        let first_seq = base.as_ref().map_or(0, |b| b.header().id_seq_end);
        IdWindow {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            base,
            layers: Layers::new(IdRing::starting_at(first_seq)),
            filter: OnceCell::new(),
        }
    }

    /// A filter of every key the layers hold.
    fn build_filter(&self) -> Result<IdFilter> {
        let mut filter = IdFilter::new(self.capacity);
        let oldest = self.oldest();
        if let Some(base) = &self.base {
            for (key, _) in base.ids_from(oldest)? {
                filter.add(key);
            }
        }
        for ring in self.layers.iter() {
            for (key, _) in ring.ids_from(oldest) {
                filter.add(key);
            }
        }
        filter.added = 0;
        Ok(filter)
    }

    /// Makes room for `additional` more ids (capped at the window) in one allocation.
    pub fn reserve(&mut self, additional: usize) {
        let n = additional.min(self.capacity.saturating_sub(self.layers.live.ring.len()));
        self.layers.live.ring.reserve(n);
        self.layers.live.map.reserve(n);
    }

    /// Sequence number of the oldest id still in the window.
    fn oldest(&self) -> u64 {
        self.layers
            .live
            .next_seq()
            .saturating_sub(self.capacity as u64)
    }

    /// The location of the newest remembered event whose key is `key`.
    pub fn get(&self, key: u64) -> Result<Option<u64>> {
        if self.capacity == 0 {
            return Ok(None);
        }
        let filter = match self.filter.get() {
            Some(filter) => filter,
            None => {
                let built = self.build_filter()?;
                self.filter.get_or_init(|| built)
            }
        };
        if !filter.may_hold(key) {
            return Ok(None);
        }
        let oldest = self.oldest();
        let in_window =
            |found: Option<(u64, u64)>| found.filter(|&(seq, _)| seq >= oldest).map(|(_, l)| l);
        if let Some(location) = in_window(self.layers.live.get(key)) {
            return Ok(Some(location));
        }
        if let Some(location) = in_window(self.layers.frozen.as_ref().and_then(|f| f.get(key))) {
            return Ok(Some(location));
        }
        match &self.base {
            Some(base) => Ok(in_window(base.id(key)?)),
            None => Ok(None),
        }
    }

    /// Remembers that the event at `location` has key `key`, forgetting the oldest id if the
    /// window is full.
    pub fn insert(&mut self, key: u64, location: u64) {
        if self.capacity == 0 {
            return;
        }
        self.layers.live.push(key, location, self.capacity);
        if let Some(filter) = self.filter.get_mut() {
            filter.add(key);
            if filter.added >= self.capacity / 2 {
                // Crowded with evicted ids: built again at the next lookup.
                self.filter = OnceCell::new();
            }
        }
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        let first = match (&self.base, &self.layers.frozen) {
            (Some(base), _) => base.header().id_seq_end - base.header().ids,
            (None, Some(frozen)) => frozen.first_seq,
            (None, None) => self.layers.live.first_seq,
        };
        let held = self.layers.live.next_seq() - first.max(self.oldest());
        usize::try_from(held).unwrap_or(usize::MAX)
    }

    /// Bytes the in-memory layers hold on the heap (allocator overhead not included).
    pub fn heap_bytes(&self) -> usize {
        let filter = self.filter.get().map_or(0, |f| f.words.len() * 8);
        self.layers.iter().map(IdRing::heap_bytes).sum::<usize>() + filter
    }

    /// The number of ids the window holds at most.
    pub fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// Makes the live ring the frozen one and returns it (`None` if one is frozen already).
    pub fn freeze(&mut self) -> Option<Arc<IdRing>> {
        let next = IdRing::starting_at(self.layers.live.next_seq());
        self.layers.freeze(next)
    }

    /// A snapshot holding the frozen ring is in place: it becomes the base. Returns the
    /// frozen ring, for the caller to free when it likes.
    pub fn install(&mut self, base: Arc<MappedIndex>) -> Option<Arc<IdRing>> {
        self.base = Some(base);
        self.layers.frozen.take()
    }

    /// Writing the snapshot failed: the frozen ring goes back under the live one.
    pub fn thaw(&mut self) {
        let capacity = self.capacity;
        self.layers.thaw(|below, above| {
            for (key, location) in above.ring {
                below.push(key, location, capacity);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_ids_are_forgotten_first() {
        let mut w = IdWindow::new(3, None);
        for i in 0..5u64 {
            w.insert(id_key("s", u128::from(i)), 100 + i);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(id_key("s", 0)).unwrap(), None);
        assert_eq!(w.get(id_key("s", 1)).unwrap(), None);
        assert_eq!(w.get(id_key("s", 4)).unwrap(), Some(104));
        assert_ne!(id_key("s", 4), id_key("t", 4));
    }

    #[test]
    fn a_key_seen_again_is_kept_until_its_newest_event_leaves() {
        let mut w = IdWindow::new(2, None);
        let k = id_key("s", 7);
        w.insert(k, 1);
        w.insert(k, 2);
        w.insert(id_key("s", 8), 3);
        // The first (k, 1) left the window; k still points at its newer event.
        assert_eq!(w.get(k).unwrap(), Some(2));
    }

    #[test]
    fn the_filter_never_hides_an_id_of_the_window() {
        let mut w = IdWindow::new(1000, None);
        let key = |i: u64| mix64(i ^ 0x5555);
        for i in 0..5000u64 {
            w.insert(key(i), i);
            if i % 700 == 0 {
                // Lookups build the filter; later inserts crowd it and it is built again.
                assert_eq!(w.get(key(i)).unwrap(), Some(i));
            }
        }
        for i in 0..5000u64 {
            let expected = (i >= 4000).then_some(i);
            assert_eq!(w.get(key(i)).unwrap(), expected, "id {i}");
        }
        let passed = (5000..105_000u64)
            .filter(|&i| w.filter.get().is_some_and(|f| f.may_hold(key(i))))
            .count();
        assert!(
            passed < 5000,
            "the filter lets {passed} of 100,000 new keys through"
        );
    }

    #[test]
    fn frozen_and_thawed_rings_keep_the_window_exact() {
        let mut w = IdWindow::new(4, None);
        for i in 0..3u64 {
            w.insert(id_key("s", u128::from(i)), 10 + i);
        }
        let frozen = w.freeze().unwrap();
        assert!(w.freeze().is_none(), "one frozen ring at a time");
        assert_eq!(frozen.next_seq(), 3);
        for i in 3..6u64 {
            w.insert(id_key("s", u128::from(i)), 10 + i);
        }
        // Ids 2..6 are the newest four, across both rings.
        assert_eq!(w.len(), 4);
        assert_eq!(w.get(id_key("s", 1)).unwrap(), None);
        assert_eq!(w.get(id_key("s", 2)).unwrap(), Some(12));
        assert_eq!(w.get(id_key("s", 5)).unwrap(), Some(15));
        drop(frozen);
        w.thaw();
        assert_eq!(w.len(), 4);
        assert_eq!(w.get(id_key("s", 1)).unwrap(), None);
        assert_eq!(w.get(id_key("s", 2)).unwrap(), Some(12));
        w.insert(id_key("s", 6), 16);
        assert_eq!(w.get(id_key("s", 2)).unwrap(), None);
    }
}
