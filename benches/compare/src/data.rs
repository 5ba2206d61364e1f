//! The events of BENCHMARKS.md, generated deterministically.

use std::collections::HashMap;

use crate::engine::Ev;

/// A small deterministic random generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// 200 incompressible bytes.
    pub fn payload(&mut self) -> Vec<u8> {
        (0..25).flat_map(|_| self.next().to_le_bytes()).collect()
    }
}

/// Events over `streams` streams chosen uniformly, in chunks, with dense versions per stream.
pub struct Interleaved {
    rng: Rng,
    streams: u64,
    versions: HashMap<u64, u64>,
    next_id: u128,
}

impl Interleaved {
    pub fn new(streams: u64) -> Self {
        Interleaved {
            rng: Rng(0x5eed),
            streams,
            versions: HashMap::new(),
            next_id: 1,
        }
    }

    /// The next `n` events.
    pub fn chunk(&mut self, n: u64) -> Vec<Ev> {
        (0..n)
            .map(|_| {
                let k = self.rng.below(self.streams);
                let version = self.versions.entry(k).or_insert(0);
                let ev = Ev {
                    stream: format!("student-{k}"),
                    version: *version,
                    id: self.next_id,
                    payload: self.rng.payload(),
                };
                *version += 1;
                self.next_id += 1;
                ev
            })
            .collect()
    }
}

/// An event for `stream` with a fresh id.
pub fn event(rng: &mut Rng, stream: &str, id: u128) -> Ev {
    Ev {
        stream: stream.to_string(),
        version: 0,
        id,
        payload: rng.payload(),
    }
}
