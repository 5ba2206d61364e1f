//! The events of BENCHMARKS.md, generated deterministically.

use std::collections::HashMap;

use crate::engine::Ev;

#[path = "../../../tests/common/rng.rs"]
mod rng;

pub use rng::Rng;

/// 200 incompressible bytes.
pub fn payload(rng: &mut Rng) -> Vec<u8> {
    rng.bytes(200)
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
            rng: Rng::new(0x5eed),
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
                    payload: payload(&mut self.rng),
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
        payload: payload(rng),
    }
}
