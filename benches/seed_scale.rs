//! W8 of BENCHMARKS.md, the seeds' scale: 100M events over 1M streams (150-byte payloads, an
//! id on every event), bulk-loaded once under `Durability::Buffered` into
//! `target/bench-data/` (about 25 GB; it takes a while). Runs only with `ANNALS_W8=1`
//! (`ANNALS_W8_EVENTS` and `ANNALS_W8_STREAMS` scale it down). Measures, each next to its
//! baseline from the same run:
//!
//! - open after a clean close and after kill -9 mid-append, each in a fresh process (median of
//!   5), with the anonymous memory opening added; baseline: the same open without the index
//!   snapshot (through the side files, as before snapshots existed);
//! - one whole random stream read, p50/p99, with a warm and a cold page cache; baseline: one
//!   random 4 KiB `pread` of a segment file, same cache state;
//! - a full zero-copy replay (`scan_all`); baseline: reading the segment files sequentially.
//!
//! The bulk load appends 10 events at a time to a random stream from one thread. The kill -9
//! runs append to the data set (the last one, of a bulk load, by a few million events per
//! run, so it comes after everything else).

mod common;

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use annals::{Durability, EventData, ExpectedVersion, Options, Store};
use common::{anon_bytes, cached_data_set, median, percentile, segment_files, Rng};

const CHILD_ENV: &str = "ANNALS_W8_CHILD";
const RUNS: usize = 5;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The data set: `events` events over `streams` streams, appended 10 at a time.
fn bulk_store(events: u64, streams: u64) -> PathBuf {
    cached_data_set(&format!("w8-{events}x{streams}"), |dir| {
        let started = Instant::now();
        let options = Options::default().durability(Durability::Buffered);
        let store = Store::open_with(dir, options).expect("open data set");
        let mut rng = Rng::new(0x5eed_5ca1e);
        let mut n = 0u64;
        while n < events {
            let stream = format!("student-{}", rng.below(streams));
            let batch: Vec<EventData> = (n..(n + 10).min(events))
                .map(|i| EventData::new("QuestionAnswered", rng.bytes(150)).id(u128::from(i) + 1))
                .collect();
            n += batch.len() as u64;
            store
                .append(&stream, ExpectedVersion::Any, batch)
                .expect("append");
            if n.is_multiple_of(10_000_000) {
                let secs = started.elapsed().as_secs_f64();
                eprintln!("  {n} events, {secs:.0} s, {:.0} events/s", n as f64 / secs);
            }
        }
        store.close().expect("close");
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "W8 bulk load: {events} events in {secs:.1} s = {:.0} events/s",
            events as f64 / secs
        );
    })
}

/// In a child process: opens the store and prints `ms anon_bytes snapshot_position`.
fn child_open(dir: &str) {
    let before = anon_bytes();
    let started = Instant::now();
    let store = Store::open(dir).expect("open");
    let took = started.elapsed();
    let added = anon_bytes().saturating_sub(before);
    let report = store.open_report();
    println!(
        "{} {added} {}",
        took.as_secs_f64() * 1e3,
        report.snapshot_position.map_or(-1, |p| p as i64)
    );
    // Leave without the clean close's snapshot: the next run must find the store as it was.
    std::process::exit(0);
}

/// In a child process: appends until killed (durably, or `Buffered` as fast as it can for a
/// bulk load), saying when it has started.
fn child_writer(dir: &str, streams: u64, bulk: bool) {
    let options = match bulk {
        true => Options::default().durability(Durability::Buffered),
        false => Options::default(),
    };
    let store = Store::open_with(dir, options).expect("writer open");
    let mut rng = Rng::new(7);
    let mut out = std::io::stdout();
    for n in 0u64.. {
        let batch: Vec<EventData> = (0..10)
            .map(|i| {
                EventData::new("QuestionAnswered", rng.bytes(150))
                    .id(u128::MAX - u128::from(n * 10 + i))
            })
            .collect();
        let stream = format!("student-{}", rng.below(streams));
        store
            .append(&stream, ExpectedVersion::Any, batch)
            .expect("append");
        if n == 100 {
            writeln!(out, "appending").expect("stdout");
            out.flush().expect("stdout");
        }
    }
}

fn spawn_child(mode: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().expect("current_exe"))
        .env(CHILD_ENV, format!("{mode}:{}", dir.display()))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Opens the store in a fresh process: (ms, anonymous bytes added, snapshot position).
fn open_in_child(dir: &Path) -> (f64, u64, i64) {
    let out = spawn_child("open", dir)
        .wait_with_output()
        .expect("open child");
    assert!(out.status.success(), "open child failed");
    let line = String::from_utf8_lossy(&out.stdout);
    let mut f = line.split_whitespace();
    let mut next = || f.next().expect("open child output");
    (
        next().parse().expect("ms"),
        next().parse().expect("bytes"),
        next().parse().expect("position"),
    )
}

/// Opens `RUNS` times (after `before` each time), printing the median.
fn measure_open(name: &str, dir: &Path, streams: u64, mut before: impl FnMut()) {
    let mut times = Vec::new();
    let mut memory = Vec::new();
    let mut position = 0;
    for _ in 0..RUNS {
        before();
        let (ms, bytes, at) = open_in_child(dir);
        times.push(ms);
        memory.push(bytes as f64);
        position = at;
    }
    let mem = median(memory);
    eprintln!(
        "W8 open, {name}: median {:.1} ms over {RUNS} fresh processes (all: {times:.1?}); \
         anonymous memory added {:.1} MB = {:.1} bytes/stream; snapshot position {position}",
        median(times.clone()),
        mem / 1e6,
        mem / streams as f64,
    );
}

/// Kills a writer appending to `dir` mid-append, after `ms` milliseconds.
fn kill_writer(dir: &Path, mode: &str, ms: u64) {
    let mut child = spawn_child(mode, dir);
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("writer started");
    std::thread::sleep(Duration::from_millis(ms));
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

fn drop_caches() -> bool {
    let synced = Command::new("sync").status().is_ok_and(|s| s.success());
    synced && std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

/// Stream read latencies, p50/p99, next to random 4 KiB reads of the segment files.
fn measure_reads(store: &Store, dir: &Path, streams: u64, reads: usize, cache: &str) {
    let files: Vec<File> = segment_files(dir)
        .iter()
        .map(|p| File::open(p).expect("open segment"))
        .collect();
    let mut rng = Rng::new(99);
    let mut raw = Vec::new();
    let mut page = vec![0u8; 4096];
    let mut stream_reads = Vec::new();
    let mut events = 0usize;
    for _ in 0..reads {
        let name = format!("student-{}", rng.below(streams));
        let t = Instant::now();
        for ev in store.read_stream(&name, 0) {
            ev.expect("event");
            events += 1;
        }
        stream_reads.push(t.elapsed());
        let f = &files[rng.below(files.len() as u64) as usize];
        let len = f.metadata().expect("stat").len();
        let at = rng.below(len / 4096) * 4096;
        let t = Instant::now();
        f.read_exact_at(&mut page, at).expect("pread");
        raw.push(t.elapsed());
    }
    eprintln!(
        "W8 stream read, {cache} cache: {reads} reads of a whole random stream ({:.0} events \
         on average): p50 {:.1?}, p99 {:.1?}; baseline random 4 KiB pread: p50 {:.1?}, p99 {:.1?}",
        events as f64 / reads as f64,
        percentile(&mut stream_reads, 50),
        percentile(&mut stream_reads, 99),
        percentile(&mut raw, 50),
        percentile(&mut raw, 99),
    );
}

/// Reads every segment file sequentially: (bytes, seconds).
fn read_segments(dir: &Path) -> (u64, f64) {
    let mut buf = vec![0u8; 16 << 20];
    let started = Instant::now();
    let mut bytes = 0u64;
    for path in segment_files(dir) {
        let mut f = File::open(path).expect("open segment");
        loop {
            let n = f.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
    }
    (bytes, started.elapsed().as_secs_f64())
}

/// A full zero-copy replay next to a sequential read of the segment files, after a first
/// read (so both find the page cache as full as it gets).
fn measure_replay(store: &Store, dir: &Path) {
    read_segments(dir);
    let (bytes, raw) = read_segments(dir);
    let started = Instant::now();
    let mut payload = 0usize;
    let seen = store
        .scan_all(0, |ev| {
            payload += ev.payload().len();
            ControlFlow::Continue(())
        })
        .expect("replay");
    let replay = started.elapsed().as_secs_f64();
    eprintln!(
        "W8 replay: {seen} events in {replay:.1} s = {:.2}M events/s; baseline sequential read \
         of the {:.1} GB of segment files: {raw:.1} s = {:.2} GB/s",
        seen as f64 / replay / 1e6,
        bytes as f64 / 1e9,
        bytes as f64 / raw / 1e9,
    );
}

fn main() {
    let streams = env_u64("ANNALS_W8_STREAMS", 1_000_000);
    if let Ok(child) = std::env::var(CHILD_ENV) {
        match child.split_once(':') {
            Some(("open", dir)) => child_open(dir),
            Some(("writer", dir)) => child_writer(dir, streams, false),
            Some(("bulk", dir)) => child_writer(dir, streams, true),
            _ => panic!("unknown child {child}"),
        }
        return;
    }
    if std::env::var("ANNALS_W8").is_err() {
        eprintln!("W8 skipped: set ANNALS_W8=1 (it builds a ~25 GB data set once)");
        return;
    }
    let events = env_u64("ANNALS_W8_EVENTS", 100_000_000);
    let dir = bulk_store(events, streams);
    // The clean close of an earlier run (or of the load) left a snapshot of everything.
    drop(Store::open(&dir).expect("open"));

    measure_open("clean close, index snapshot", &dir, streams, || {});
    let snapshot = dir.join("INDEX");
    let saved = dir.join("INDEX.saved");
    measure_open(
        "clean close, baseline without the snapshot (side files)",
        &dir,
        streams,
        || {
            let _ = std::fs::rename(&snapshot, &saved);
        },
    );
    std::fs::rename(&saved, &snapshot).expect("restore the snapshot");
    measure_open("after kill -9 mid-append", &dir, streams, || {
        kill_writer(&dir, "writer", 300)
    });
    measure_open(
        "after kill -9 mid-append, baseline without the snapshot",
        &dir,
        streams,
        || {
            kill_writer(&dir, "writer", 300);
            let _ = std::fs::rename(&snapshot, &saved);
        },
    );
    std::fs::rename(&saved, &snapshot).expect("restore the snapshot");

    let store = Store::open(&dir).expect("open");
    measure_reads(&store, &dir, streams, 10_000, "first pass");
    measure_reads(&store, &dir, streams, 10_000, "warm (the same reads again)");
    // Pages a process has mapped stay cached: close the store before dropping the cache.
    drop(store);
    if drop_caches() {
        let started = Instant::now();
        let store = Store::open(&dir).expect("open");
        eprintln!("W8 open with a cold page cache: {:.1?}", started.elapsed());
        measure_reads(&store, &dir, streams, 1_000, "cold (caches dropped)");
    } else {
        eprintln!("W8 stream read, cold cache: skipped (cannot drop the page cache)");
    }
    let store = Store::open(&dir).expect("open");
    measure_replay(&store, &dir);
    drop(store);
    // Last, as each run appends a few million events: the worst case, a bulk load killed
    // after 4 s, its snapshots lagging behind it.
    measure_open(
        "after kill -9 of a bulk load running 4 s",
        &dir,
        streams,
        || kill_writer(&dir, "bulk", 4000),
    );
}
