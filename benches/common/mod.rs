//! Data sets shared by the benches: the events of BENCHMARKS.md ("QuestionAnswered", 200
//! random bytes, an id on every event, streams `student-{k}` chosen uniformly).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use annals::{Durability, EventData, ExpectedVersion, Options, Store};

#[path = "../../tests/common/files.rs"]
mod files;
#[path = "../../tests/common/rng.rs"]
mod rng;

#[allow(unused_imports)]
pub use files::segment_files;
#[allow(unused_imports)]
pub use rng::Rng;

/// Number of events for the big data sets: `ANNALS_BENCH_EVENTS`, default 1,000,000 (the
/// published numbers use 10,000,000).
pub fn bench_events() -> u64 {
    std::env::var("ANNALS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// A closed store of `events` single-event appends interleaved uniformly over `streams`
/// streams, on the local disk under `target/bench-data/` and reused by later runs (it takes
/// a while to build at 10M events).
pub fn interleaved_store(events: u64, streams: u64) -> PathBuf {
    cached_data_set(&format!("interleaved-{events}x{streams}"), |dir| {
        let started = Instant::now();
        let options = Options::default().durability(Durability::Buffered);
        let store = Store::open_with(dir, options).expect("open data set");
        let mut rng = Rng::new(0x5eed);
        for n in 0..events {
            let stream = format!("student-{}", rng.below(streams));
            let event = EventData::new("QuestionAnswered", rng.bytes(200)).id(u128::from(n) + 1);
            store
                .append(&stream, ExpectedVersion::Any, [event])
                .expect("append");
            if (n + 1) % 1_000_000 == 0 {
                eprintln!("  {} events, {:.0?}", n + 1, started.elapsed());
            }
        }
        store.close().expect("close");
    })
}

/// A closed store of `events` events written in durable appends of 1,000 events each (to
/// 1,000 streams in turn), under `target/bench-data/` and reused by later runs.
pub fn batched_store(events: u64) -> PathBuf {
    cached_data_set(&format!("batched-{events}"), |dir| {
        let store = Store::open(dir).expect("open data set");
        let mut rng = Rng::new(0xba7c);
        for b in 0..events.div_ceil(1000) {
            let events = (0..1000u64).map(|i| {
                EventData::new("QuestionAnswered", rng.bytes(200)).id(u128::from(b * 1000 + i) + 1)
            });
            store
                .append(
                    &format!("student-{}", b % 1000),
                    ExpectedVersion::Any,
                    events,
                )
                .expect("append");
        }
        store.close().expect("close");
    })
}

/// The data set `name` under `target/bench-data/`, built by `build` into an empty directory
/// unless an earlier run finished building it in this build's format (it then holds a `READY`
/// file naming the format version).
pub fn cached_data_set(name: &str, build: impl FnOnce(&Path)) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/bench-data")
        .join(name);
    let ready = dir.join("READY");
    let format = format!("format {}", annals::format::FORMAT_VERSION);
    if std::fs::read_to_string(&ready).is_ok_and(|s| s == format) {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("building data set {}", dir.display());
    let started = Instant::now();
    build(&dir);
    std::fs::write(&ready, format).expect("mark data set ready");
    eprintln!("built in {:.1?}", started.elapsed());
    dir
}

/// Resident memory of this process in bytes (Linux).
pub fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Anonymous resident memory of this process in bytes (Linux `RssAnon`): heap and stacks,
/// not the page cache of mapped files.
pub fn anon_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("RssAnon:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

/// The middle value of `samples` (the upper one of an even count).
pub fn median<T: PartialOrd + Copy>(mut samples: Vec<T>) -> T {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    samples[samples.len() / 2]
}

/// The p-th percentile (0..=100) of `samples`, sorting them.
pub fn percentile(samples: &mut [std::time::Duration], p: usize) -> std::time::Duration {
    samples.sort_unstable();
    samples[(samples.len() * p / 100).min(samples.len() - 1)]
}
