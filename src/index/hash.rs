//! The hashes the indexes use: of stream names (for the stream index, replaceable in tests to
//! force collisions), and hashers for maps keyed by names or by hashes already made.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

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

/// A hasher for names: FNV-1a over the bytes, then [`mix64`] (much cheaper than SipHash on
/// short names). Not keyed: used for names from the store's own files, and for the stream
/// names of one batch of appends (names made to collide slow that batch only).
#[derive(Debug, Clone, Copy)]
pub struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> Self {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// A map keyed by stream names.
pub type NameKeyed<V> = HashMap<Box<str>, V, BuildHasherDefault<NameHasher>>;

/// A map keyed by a hash that is used as it is.
pub type HashKeyed<V> = HashMap<u64, V, BuildHasherDefault<PassThrough>>;
