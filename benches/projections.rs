//! Issue 15's workloads, each next to a baseline from the same run:
//!
//! - a read by type of a type that is 0.1% of the store (`read_by_type`), against the full
//!   zero-copy scan that filters it (`scan_all`); median of 5 each, warm page cache; plus the
//!   first read in the process (which indexes the tail), the memory it added, and the type
//!   and category index's size on disk per event;
//! - W9: rebuilding a projection whose handler costs about 2 µs per event with
//!   `replay_partitioned` on 1 worker and on 2 (this VM has 2 cores), by school.
//!
//! `cargo bench --bench projections` (`ANNALS_BENCH_EVENTS=N`, default 1M).

mod common;

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use annals::{Durability, EventData, ExpectedVersion, Options, Store};
use common::{anon_bytes, bench_events, cached_data_set, median, Rng};

/// Schools; each student stream is `school{s}-student{n}`, category `school{s}`.
const SCHOOLS: u64 = 64;

fn build(dir: &Path, events: u64) {
    let store =
        Store::open_with(dir, Options::default().durability(Durability::Buffered)).expect("open");
    let mut rng = Rng::new(3);
    let mut batch = Vec::new();
    for n in 0..events {
        let school = rng.below(SCHOOLS);
        let stream = format!("school{school}-student{}", rng.below(10_000));
        let kind = if n % 1_000 == 999 {
            "Rare"
        } else {
            "QuestionAnswered"
        };
        batch.push((
            stream,
            ExpectedVersion::Any,
            [EventData::new(kind, rng.bytes(200))],
        ));
        if batch.len() == 1_000 {
            for r in store.append_many(batch.drain(..)).expect("append_many") {
                r.expect("append");
            }
        }
    }
    for r in store.append_many(batch.drain(..)).expect("append_many") {
        r.expect("append");
    }
}

fn tix_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tix"))
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .sum()
}

fn spin(d: Duration) {
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events = bench_events();
    let dir = cached_data_set(&format!("projections-{events}"), |d| build(d, events));
    let store = Store::open(&dir).expect("open");

    let count = || {
        store
            .read_by_type("Rare", 0)
            .try_fold(0usize, |n, e| e.map(|_| n + 1))
            .expect("read_by_type")
    };
    let anon_before = anon_bytes();
    let started = Instant::now();
    let first = count();
    let first_read = started.elapsed();
    let anon_added = anon_bytes().saturating_sub(anon_before);
    let (mut by_type, mut scans) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = Instant::now();
        let n = count();
        by_type.push(t.elapsed());
        assert_eq!(n, first);
        let t = Instant::now();
        let mut m = 0;
        store
            .scan_all(0, |ev| {
                m += usize::from(ev.event_type() == "Rare");
                ControlFlow::Continue(())
            })
            .expect("scan_all");
        scans.push(t.elapsed());
        assert_eq!(m, first);
    }
    let (indexed, scanned) = (median(by_type), median(scans));
    println!(
        "read_by_type of a 0.1% type ({first} of {events} events): {indexed:.2?} (first read \
         in the process, indexing the tail: {first_read:.2?}) vs a filtering scan_all \
         {scanned:.2?}: {:.0}x; type and category index on disk: {:.2} bytes per event \
         (sealed segments); memory the first read added: {:.2} MB ({:.2} bytes per event)",
        scanned.as_secs_f64() / indexed.as_secs_f64(),
        tix_bytes(&dir) as f64 / events as f64,
        anon_added as f64 / 1e6,
        anon_added as f64 / events as f64
    );

    let mut times = Vec::new();
    for workers in [1, 2] {
        let t = Instant::now();
        let handled = store
            .replay_partitioned(
                0,
                workers,
                |ev| {
                    ev.stream()
                        .split_once('-')
                        .map(|(school, _)| school.to_string())
                },
                |_, _| spin(Duration::from_micros(2)),
            )
            .expect("replay_partitioned");
        assert_eq!(handled, events);
        times.push(t.elapsed());
    }
    println!(
        "W9: replay {events} events into a projection costing ~2 µs per event, partitioned by \
         school: 1 worker {:.2?} ({:.0} events/s), 2 workers {:.2?} ({:.0} events/s): {:.2}x",
        times[0],
        events as f64 / times[0].as_secs_f64(),
        times[1],
        events as f64 / times[1].as_secs_f64(),
        times[0].as_secs_f64() / times[1].as_secs_f64()
    );
}
