//! The window of remembered event ids, for idempotent appends.
//!
//! It remembers the locations of the most recent `dedup_window` events that carry an id
//! (which covers every id among the most recent `dedup_window` events). Each id is keyed by a
//! 64-bit hash of (stream, id); a hit is only a candidate: the writer reads the record at the
//! location and checks that it is that stream's event with that id. Memory: a 16-byte ring
//! entry plus a 16-byte table slot and a control byte per id, with the table at most 7/8 full
//! and at least about 7/16 full: 35 to 55 bytes per remembered id, about 45 MB at the default
//! window of one million.
//!
//! Two (stream, id) pairs whose keys collide within the window make the older one forgotten
//! early (odds about n² / 2^65 for n remembered ids).

use std::collections::VecDeque;

use crate::index::{default_stream_hash, mix64, HashKeyed};

/// Remembered ids and where their events are.
#[derive(Debug)]
pub struct IdWindow {
    capacity: usize,
    /// (key, location) in append order, oldest first.
    ring: VecDeque<(u64, u64)>,
    /// key -> location of the newest event with that key.
    map: HashKeyed<u64>,
}

/// The key of `id` in `stream`.
pub fn id_key(stream: &str, id: u128) -> u64 {
    let s = default_stream_hash(stream);
    mix64(s ^ mix64(id as u64 ^ mix64((id >> 64) as u64 ^ 0x9e37_79b9_7f4a_7c15)))
}

impl IdWindow {
    /// A window remembering up to `capacity` ids.
    pub fn new(capacity: u64) -> Self {
        IdWindow {
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            ring: VecDeque::new(),
            map: HashKeyed::default(),
        }
    }

    /// Makes room for `additional` more ids (capped at the window) in one allocation.
    pub fn reserve(&mut self, additional: usize) {
        let n = additional.min(self.capacity.saturating_sub(self.ring.len()));
        self.ring.reserve(n);
        self.map.reserve(n);
    }

    /// The location of the newest remembered event whose key is `key`.
    pub fn get(&self, key: u64) -> Option<u64> {
        self.map.get(&key).copied()
    }

    /// Remembers that the event at `location` has key `key`, forgetting the oldest id if the
    /// window is full.
    pub fn insert(&mut self, key: u64, location: u64) {
        if self.capacity == 0 {
            return;
        }
        if self.ring.len() == self.capacity {
            if let Some((old_key, old_location)) = self.ring.pop_front() {
                if self.map.get(&old_key) == Some(&old_location) {
                    self.map.remove(&old_key);
                }
            }
        }
        self.ring.push_back((key, location));
        self.map.insert(key, location);
    }

    /// Number of remembered ids.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Bytes held on the heap (allocator overhead not included).
    pub fn heap_bytes(&self) -> usize {
        self.ring.capacity() * 16 + self.map.capacity() * 17
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_ids_are_forgotten_first() {
        let mut w = IdWindow::new(3);
        for i in 0..5u64 {
            w.insert(id_key("s", u128::from(i)), 100 + i);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(id_key("s", 0)), None);
        assert_eq!(w.get(id_key("s", 1)), None);
        assert_eq!(w.get(id_key("s", 4)), Some(104));
        assert_ne!(id_key("s", 4), id_key("t", 4));
    }

    #[test]
    fn a_key_seen_again_is_kept_until_its_newest_event_leaves() {
        let mut w = IdWindow::new(2);
        let k = id_key("s", 7);
        w.insert(k, 1);
        w.insert(k, 2);
        w.insert(id_key("s", 8), 3);
        // The first (k, 1) left the window; k still points at its newer event.
        assert_eq!(w.get(k), Some(2));
    }
}
