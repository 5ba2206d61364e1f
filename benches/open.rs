//! W6 of BENCHMARKS.md: open a big store after a clean close, and after a writer was killed
//! with SIGKILL in the middle of appending (10M events at full size; set
//! `ANNALS_BENCH_EVENTS`), over one stream per 10 events (1M streams at 10M events). The
//! baseline in the same run opens the same store without its index snapshot (through the
//! side files). Also prints the anonymous memory the first open adds.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};
use common::{anon_bytes, bench_events, interleaved_store, Rng};
use criterion::{criterion_group, Criterion};

const CHILD_ENV: &str = "ANNALS_BENCH_WRITER";

/// The writer that gets killed: appends durably forever, saying when it has started.
fn writer(dir: &str) {
    let store = Store::open(dir).expect("writer open");
    let mut rng = Rng::new(7);
    let mut out = std::io::stdout();
    for n in 0.. {
        let event = EventData::new("QuestionAnswered", rng.bytes(200)).id(u128::MAX - n);
        let stream = format!("student-{}", rng.below(1000));
        store
            .append(&stream, ExpectedVersion::Any, [event])
            .expect("append");
        if n == 100 {
            writeln!(out, "appending").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

fn open(c: &mut Criterion) {
    let events = bench_events();
    let streams = events / 10;
    let dir = interleaved_store(events, streams);
    // The first open (of a data set built before snapshots existed) and its close leave one.
    drop(Store::open(&dir).expect("open"));
    let before = anon_bytes();
    let store = Store::open(&dir).expect("open");
    let added = anon_bytes().saturating_sub(before);
    let report = store.open_report().clone();
    drop(store);
    eprintln!(
        "W6: {events} events over {streams} streams: open added {added} bytes of anonymous \
         memory = {:.1} bytes/stream; index snapshot up to position {:?}",
        added as f64 / streams as f64,
        report.snapshot_position
    );
    let mut group = c.benchmark_group("open");
    group.sample_size(10);
    let snapshot = dir.join("INDEX");
    let saved = dir.join("INDEX.saved");
    group.bench_function(
        format!("{events} events, clean close, baseline without the index snapshot"),
        |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::fs::rename(&snapshot, &saved).expect("set the snapshot aside");
                    let t = Instant::now();
                    let store = Store::open(&dir).expect("open");
                    total += t.elapsed();
                    assert_eq!(store.open_report().snapshot_position, None);
                    drop(store);
                    std::fs::rename(&saved, &snapshot).expect("restore the snapshot");
                }
                total
            })
        },
    );
    group.bench_function(format!("{events} events, clean close"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let store = Store::open(&dir).expect("open");
                total += t.elapsed();
                drop(store);
            }
            total
        })
    });
    group.bench_function(format!("{events} events, after kill -9 mid-append"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut child = Command::new(std::env::current_exe().expect("current_exe"))
                    .env(CHILD_ENV, &dir)
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn writer");
                let mut line = String::new();
                let stdout = child.stdout.take().expect("stdout");
                BufReader::new(stdout)
                    .read_line(&mut line)
                    .expect("writer started");
                child.kill().expect("kill -9");
                child.wait().expect("reap");
                let t = Instant::now();
                let store = Store::open(&dir).expect("open after kill");
                total += t.elapsed();
                drop(store);
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, open);

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        writer(&dir);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
