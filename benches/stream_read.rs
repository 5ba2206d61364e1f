//! W5 of BENCHMARKS.md: read one whole random stream of a store whose events are interleaved
//! over 100 events per stream (10M events over 100k streams at full size; set
//! `ANNALS_BENCH_EVENTS`). Also prints the open time and the resident memory of the index.

mod common;

use std::time::{Duration, Instant};

use annals::Store;
use common::{bench_events, interleaved_store, percentile, resident_bytes, Rng};
use criterion::{criterion_group, criterion_main, Criterion};

fn stream_read(c: &mut Criterion) {
    let events = bench_events();
    let streams = events / 100;
    let dir = interleaved_store(events, streams);

    let rss_before = resident_bytes();
    let started = Instant::now();
    let store = Store::open(&dir).expect("open");
    let opened = started.elapsed();
    let rss_after = resident_bytes();
    let stats = store.stats();
    eprintln!(
        "W5 store: {} events, {} streams; open {opened:.1?}; index {} bytes = {:.2} bytes/event; \
         remembered ids {} ({} bytes); process resident memory grew by {} bytes on open \
         ({:.2} bytes/event, ids and page tables included)",
        stats.events,
        stats.streams,
        stats.index_bytes,
        stats.index_bytes as f64 / stats.events as f64,
        stats.remembered_ids,
        stats.id_window_bytes,
        rss_after.saturating_sub(rss_before),
        rss_after.saturating_sub(rss_before) as f64 / stats.events as f64,
    );

    let mut rng = Rng::new(42);
    let mut samples = Vec::new();
    let mut group = c.benchmark_group("stream-read");
    group.bench_function(format!("one whole stream of {streams}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let name = format!("student-{}", rng.below(streams));
                let t = Instant::now();
                let mut n = 0;
                for ev in store.read_stream(&name, 0) {
                    n += ev.expect("event").payload().len();
                }
                let took = t.elapsed();
                assert!(n > 0);
                samples.push(took);
                total += took;
            }
            total
        })
    });
    group.finish();
    eprintln!(
        "W5 latency over {} reads: p50 {:.1?}, p99 {:.1?}",
        samples.len(),
        percentile(&mut samples, 50),
        percentile(&mut samples, 99)
    );
}

criterion_group!(benches, stream_read);
criterion_main!(benches);
