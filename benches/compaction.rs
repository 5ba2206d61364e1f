//! Compaction and erasure, each next to a baseline from the same run:
//!
//! - **throughput**: compacting a store (`ANNALS_BENCH_EVENTS` events, default 1M, 200-byte
//!   payloads, 64 MiB segments) where half the events belong to soft-deleted streams,
//!   interleaved with the kept half; the figure is the sealed bytes compaction processes per
//!   second, as a share of the raw copy bandwidth: reading the same sealed segment files and
//!   writing them to new files with an `fsync` each (what any rewrite must at least do).
//!   Median of 3 runs each, page cache dropped before every run (as root).
//! - **append latency**: one thread appending one durable event at a time (`Fsync`) while
//!   `compact()` runs on another thread, p50/p99, next to the same appends just before it;
//!   then the time to open the compacted store, next to opening it before compaction.
//!
//! `cargo bench --bench compaction` (`ANNALS_BENCH_EVENTS=N` to scale).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{Durability, EventData, ExpectedVersion, Options, Store};
use common::{bench_events, median, percentile, segment_files, Rng};

const STREAMS: u64 = 2_000;

fn options() -> Options {
    Options::default().segment_size(64 << 20)
}

/// A store of `events` events over `STREAMS` streams, half of them (`drop-…`) deleted.
fn build(dir: &Path, events: u64) {
    let store = Store::open_with(dir, options().durability(Durability::Buffered)).expect("open");
    let mut rng = Rng::new(11);
    let mut batch = Vec::new();
    for n in 0..events {
        let s = rng.below(STREAMS);
        let kind = if s.is_multiple_of(2) { "keep" } else { "drop" };
        let event = EventData::new("Measured", rng.bytes(200));
        batch.push((format!("{kind}-{s}"), ExpectedVersion::Any, [event]));
        if batch.len() == 1_000 || n + 1 == events {
            for r in store.append_many(batch.drain(..)).expect("append_many") {
                r.expect("append");
            }
        }
    }
    for s in (1..STREAMS).step_by(2) {
        store
            .delete_stream(&format!("drop-{s}"), ExpectedVersion::Any)
            .expect("delete");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

/// Empties the page cache (needs root; without it the runs are warm, both alike).
fn drop_caches() {
    let _ = std::process::Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// Reads every sealed segment file of `dir` and writes it to a new file in `out`, synced.
fn raw_copy(dir: &Path, out: &Path) -> (u64, Duration) {
    std::fs::create_dir_all(out).expect("mkdir");
    let files = segment_files(dir);
    let started = Instant::now();
    let mut bytes = 0;
    for file in &files[..files.len() - 1] {
        let data = std::fs::read(file).expect("read");
        let target = out.join(file.file_name().expect("name"));
        let mut f = std::fs::File::create(&target).expect("create");
        std::io::Write::write_all(&mut f, &data).expect("write");
        f.sync_all().expect("fsync");
        bytes += data.len() as u64;
    }
    (bytes, started.elapsed())
}

fn sealed_bytes(dir: &Path) -> u64 {
    let files = segment_files(dir);
    files[..files.len() - 1]
        .iter()
        .map(|f| std::fs::metadata(f).expect("stat").len())
        .sum()
}

fn throughput(source: &Path, scratch: &Path) {
    let (mut compaction, mut raw) = (Vec::new(), Vec::new());
    let mut last = None;
    for run in 0..3 {
        let work: PathBuf = scratch.join(format!("run-{run}"));
        copy_dir(source, &work);
        let sealed = sealed_bytes(&work);
        drop_caches();
        let store = Store::open_with(&work, options()).expect("open");
        let report = store.compact().expect("compact");
        drop(store);
        compaction.push(sealed as f64 / report.duration.as_secs_f64());
        drop_caches();
        // The same segments as the compaction read, before it rewrote them.
        let (bytes, took) = raw_copy(source, &scratch.join(format!("raw-{run}")));
        raw.push(bytes as f64 / took.as_secs_f64());
        last = Some((sealed, report));
        let _ = std::fs::remove_dir_all(&work);
        let _ = std::fs::remove_dir_all(scratch.join(format!("raw-{run}")));
    }
    let (sealed, report) = last.expect("a run");
    let (c, r) = (median(compaction), median(raw));
    println!(
        "compaction: {:.0} MB/s of sealed segments ({} bytes, {} events removed, {} -> {} \
         bytes) vs raw copy (read + write + fsync) {:.0} MB/s: {:.0}%",
        c / 1e6,
        sealed,
        report.events_removed,
        report.bytes_before,
        report.bytes_after,
        r / 1e6,
        100.0 * c / r
    );
}

fn append_latency(source: &Path, scratch: &Path) {
    let work = scratch.join("latency");
    copy_dir(source, &work);
    let store = Store::open_with(&work, options()).expect("open");
    let open_before = store.open_report().duration;
    let running = Arc::new(AtomicBool::new(true));
    let appender = {
        let (store, running) = (store.clone(), Arc::clone(&running));
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut rng = Rng::new(5);
            while running.load(Ordering::Relaxed) {
                let event = EventData::new("Live", rng.bytes(200));
                let t = Instant::now();
                store
                    .append("live-1", ExpectedVersion::Any, [event])
                    .expect("append");
                samples.push((t, t.elapsed()));
            }
            samples
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    let report = store.compact().expect("compact");
    let ended = Instant::now();
    running.store(false, Ordering::Relaxed);
    let samples = appender.join().expect("appender");
    let mut before: Vec<Duration> = samples
        .iter()
        .filter(|(t, _)| *t < started && *t + Duration::from_secs(3) >= started)
        .map(|s| s.1)
        .collect();
    let mut during: Vec<Duration> = samples
        .iter()
        .filter(|(t, _)| *t >= started && *t < ended)
        .map(|s| s.1)
        .collect();
    drop(store);
    let reopened = Store::open_with(&work, options()).expect("reopen");
    let open_after = reopened.open_report();
    println!(
        "open after a clean close: {:.2?} after compaction (index snapshot up to {:?}), \
         {open_before:.2?} before it",
        open_after.duration, open_after.snapshot_position
    );
    println!(
        "append latency while compaction runs ({:.2?}, {} events removed): {} appends, p50 \
         {:.2?}, p99 {:.2?}; just before, without it: {} appends, p50 {:.2?}, p99 {:.2?}",
        report.duration,
        report.events_removed,
        during.len(),
        percentile(&mut during, 50),
        percentile(&mut during, 99),
        before.len(),
        percentile(&mut before, 50),
        percentile(&mut before, 99),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events = bench_events();
    let data = common::cached_data_set(&format!("compaction-{events}"), |dir| build(dir, events));
    let scratch = tempfile::tempdir_in(data.parent().expect("parent")).expect("scratch");
    throughput(&data, scratch.path());
    append_latency(&data, scratch.path());
}
