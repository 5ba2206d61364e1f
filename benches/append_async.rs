//! W2a of BENCHMARKS.md (`append-async`): one thread keeps 1,000 and then 10,000
//! `append_async` futures in flight, one event each (200 random bytes, an id), each task to
//! its own stream with an exact expected version, durable (`Durability::Fsync`). Run on a
//! current-thread tokio runtime and, separately, on a hand-made executor (the tests' own).
//!
//! Each configuration runs three times in new stores; the median rate is reported next to
//! the raw rate measured in the same run (one 256-byte `write` + `fdatasync` at a time into a
//! preallocated file, measured before, between and after; median). Target: 50x that rate.
//! Also p50/p99 of every append (from its creation to its result) and the threads of the
//! process while it runs.
//!
//! `cargo bench --bench append_async` (`ANNALS_BENCH_EVENTS=N`: events per run, default
//! 400,000).

mod common;

#[path = "../tests/common/executor.rs"]
#[allow(dead_code)]
mod executor;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};
use common::{median, percentile, Rng};

const TYPE: &str = "QuestionAnswered";

/// Appends/s of one 256-byte write + fdatasync at a time, over `n` of them.
fn raw_rate(dir: &Path, n: u32) -> f64 {
    let file = File::create(dir.join("raw")).expect("raw file");
    let zeros = vec![0u8; 1 << 20];
    for i in 0..16u64 {
        file.write_all_at(&zeros, i << 20).expect("zero");
    }
    file.sync_all().expect("sync");
    let buf = [0x5Au8; 256];
    let started = Instant::now();
    for i in 0..u64::from(n) {
        file.write_all_at(&buf, i * 256 % (16 << 20))
            .expect("write");
        file.sync_data().expect("fdatasync");
    }
    f64::from(n) / started.elapsed().as_secs_f64()
}

/// The process's threads now.
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
}

/// One task: `rounds` appends to its own stream, each awaited; returns their latencies and
/// (for task 0, half-way) the threads of the process.
async fn task(store: Store, t: u64, rounds: u64, payload: Vec<u8>) -> (Vec<Duration>, usize) {
    let stream = format!("student-{t}");
    let (mut latencies, mut seen) = (Vec::with_capacity(rounds as usize), 0);
    for v in 0..rounds {
        let expected = v
            .checked_sub(1)
            .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
        let event = EventData::new(TYPE, payload.clone()).id(u128::from(t) << 64 | u128::from(v));
        let t0 = Instant::now();
        store
            .append_async(&stream, expected, [event])
            .await
            .expect("append");
        latencies.push(t0.elapsed());
        if t == 0 && v == rounds / 2 {
            seen = threads();
        }
    }
    (latencies, seen)
}

/// One run of `in_flight` tasks of `rounds` appends each on `executor`, in a new store:
/// events/s, every append's latency, and the threads of the process half-way.
fn run(
    dir: &Path,
    executor: &str,
    in_flight: u64,
    rounds: u64,
    payload: &[u8],
) -> (f64, Vec<Duration>, usize) {
    let dir = tempfile::tempdir_in(dir).expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let tasks = (0..in_flight).map(|t| task(store.clone(), t, rounds, payload.to_vec()));
    let started = Instant::now();
    let outputs: Vec<(Vec<Duration>, usize)> = if executor.starts_with("tokio") {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let handles: Vec<_> = tasks.map(tokio::spawn).collect();
            let mut outputs = Vec::with_capacity(handles.len());
            for h in handles {
                outputs.push(h.await.expect("task"));
            }
            outputs
        })
    } else {
        executor::run_all(tasks.collect()).0
    };
    let rate = (in_flight * rounds) as f64 / started.elapsed().as_secs_f64();
    let threads = outputs.iter().map(|o| o.1).max().unwrap_or(0);
    (
        rate,
        outputs.into_iter().flat_map(|o| o.0).collect(),
        threads,
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks.
    }
    let events: u64 = std::env::var("ANNALS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    const RUNS: usize = 3;
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
    let payload = Rng::new(2).bytes(200);
    let mut raws = vec![raw_rate(dir.path(), 2_000)];
    let mut results = Vec::new();
    for in_flight in [1_000u64, 10_000] {
        for executor in ["tokio current-thread", "hand-made executor"] {
            let (mut rates, mut latencies, mut threads) = (Vec::new(), Vec::new(), 0);
            for _ in 0..RUNS {
                let (rate, l, t) = run(
                    dir.path(),
                    executor,
                    in_flight,
                    events / in_flight,
                    &payload,
                );
                rates.push(rate);
                latencies.extend(l);
                threads = threads.max(t);
            }
            results.push((executor, in_flight, rates, latencies, threads));
        }
        raws.push(raw_rate(dir.path(), 2_000));
    }
    let raw = median(raws.clone());
    let raws: Vec<String> = raws.iter().map(|r| format!("{r:.0}")).collect();
    println!(
        "raw write+fdatasync of 256 B, one at a time: median {raw:.0}/s ({})",
        raws.join(", ")
    );
    for (executor, in_flight, rates, mut latencies, threads) in results {
        let shown: Vec<String> = rates.iter().map(|r| format!("{:.0}k", r / 1e3)).collect();
        let rate = median(rates);
        println!(
            "W2a {executor}, {in_flight} in flight: median {rate:.0} events/s = {:.1}x raw (runs: {}); p50 {:.2?}, p99 {:.2?}; {threads} threads in the process",
            rate / raw,
            shown.join(", "),
            percentile(&mut latencies, 50),
            percentile(&mut latencies, 99),
        );
    }
}
