//! A small deterministic random generator (xorshift64*), shared by the tests, the benches
//! and the comparison harness (which include this file by path).
#![allow(dead_code)]

/// xorshift64*: fast, deterministic, good enough for test data.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced by 1).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    /// A seed from `ANNALS_SEED` or the clock, printed so that a failing run can be repeated.
    pub fn from_clock(test: &str) -> Self {
        let seed = std::env::var("ANNALS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: ANNALS_SEED={seed}");
        Rng::new(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `len` incompressible bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .take(len)
            .collect()
    }
}
