//! W7 of BENCHMARKS.md: one appender at W1's pace (one durable event per append), one live
//! subscriber; the lag from the append returning to the subscriber holding the event. The
//! subscriber is woken by the writer, never polls, so the event often arrives before the
//! appender's own call has returned (a lag of zero); the time from the start of the append
//! to delivery is printed too.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};
use common::{percentile, Rng};
use criterion::{criterion_group, criterion_main, Criterion};

fn subscribe_lag(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let payload = Rng::new(3).bytes(200);
    let (tx, rx) = mpsc::channel();
    let mut sub = store.subscribe_all(0);
    let subscriber = std::thread::spawn(move || {
        for event in sub.by_ref() {
            let event = event.expect("event");
            if event.event_type() == "Stop" {
                break;
            }
            if tx.send((event.position(), Instant::now())).is_err() {
                break;
            }
        }
    });

    let (mut lags, mut totals) = (Vec::new(), Vec::new());
    let mut id = 0u128;
    let mut group = c.benchmark_group("subscribe-lag");
    group.bench_function("append to delivery", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                id += 1;
                let event = EventData::new("QuestionAnswered", payload.clone()).id(id);
                let started = Instant::now();
                let r = store
                    .append("student-1", ExpectedVersion::Any, [event])
                    .expect("append");
                let returned = Instant::now();
                let (position, delivered) = rx.recv().expect("delivery");
                assert_eq!(position, r.first_position);
                lags.push(delivered.saturating_duration_since(returned));
                let whole = delivered.max(returned) - started;
                totals.push(whole);
                total += whole;
            }
            total
        })
    });
    group.finish();
    store
        .append(
            "stop",
            ExpectedVersion::Any,
            [EventData::new("Stop", vec![])],
        )
        .expect("stop");
    subscriber.join().expect("subscriber");
    eprintln!(
        "W7 over {} appends: lag after the append returned p50 {:.1?}, p99 {:.1?}; \
         append start to delivery p50 {:.1?}, p99 {:.1?}",
        lags.len(),
        percentile(&mut lags, 50),
        percentile(&mut lags, 99),
        percentile(&mut totals, 50),
        percentile(&mut totals, 99)
    );
}

criterion_group!(benches, subscribe_lag);
criterion_main!(benches);
