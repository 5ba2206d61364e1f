//! W1–W3 of BENCHMARKS.md: durable appends, each next to its raw baseline measured in the
//! same run (`write` + `fdatasync` of the same bytes, in the same sizes, into a preallocated
//! zero-filled file):
//!
//! - W1 `append-1x1`: one thread, one event per append.
//! - W2 `append-64x1`: 64 threads, one event per append, each to its own streams with an exact
//!   expected version. Target: 20x the raw rate of one 256-byte write+fdatasync at a time.
//! - W3 `append-batch`: one thread, 1,000 events per append. Target: 80% of raw bandwidth.
//!
//! Latency percentiles of every annals append are printed after each group.

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use annals::format::{record_len, FRAME_HEADER_LEN};
use annals::{EventData, ExpectedVersion, Store};
use common::{percentile, Rng};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const TYPE: &str = "QuestionAnswered";
const RAW_FILE: u64 = 256 << 20;

/// Bytes annals writes for one append of `events` 200-byte events with ids to `stream`.
fn frame_bytes(stream: &str, events: usize) -> usize {
    FRAME_HEADER_LEN + events * record_len(stream.len(), TYPE.len(), 0, 200, true)
}

/// A zero-filled, synced file to overwrite in a cycle: what a preallocated log looks like.
fn raw_file(dir: &Path) -> File {
    let path = dir.join("raw");
    let zeros = vec![0u8; 1 << 20];
    let file = File::create(&path).expect("raw file");
    for i in 0..RAW_FILE >> 20 {
        file.write_all_at(&zeros, i << 20).expect("zero");
    }
    file.sync_all().expect("sync");
    file
}

/// Raw baseline: `size`-byte write + fdatasync, one at a time.
fn bench_raw(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    file: &File,
    size: usize,
) {
    let buf = vec![0x5Au8; size];
    let mut offset = 0u64;
    group.bench_function(format!("raw write+fdatasync {size} B"), |b| {
        b.iter(|| {
            if offset + size as u64 > RAW_FILE {
                offset = 0;
            }
            file.write_all_at(&buf, offset).expect("write");
            file.sync_data().expect("fdatasync");
            offset += size as u64;
        })
    });
}

fn w1_w3(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
    let raw = raw_file(dir.path());
    let store = Store::open(dir.path().join("store")).expect("open");
    let mut rng = Rng::new(1);
    let payload = rng.bytes(200);
    let mut id = 0u128;

    let mut group = c.benchmark_group("append-1x1");
    group.throughput(Throughput::Elements(1));
    bench_raw(&mut group, &raw, frame_bytes("student-1", 1));
    let mut latencies = Vec::new();
    group.bench_function("annals", |b| {
        b.iter(|| {
            id += 1;
            let t = Instant::now();
            let event = EventData::new(TYPE, payload.clone()).id(id);
            store
                .append("student-1", ExpectedVersion::Any, [event])
                .expect("append");
            latencies.push(t.elapsed());
        })
    });
    group.finish();
    report("W1", &mut latencies);

    let mut group = c.benchmark_group("append-batch");
    let bytes = frame_bytes("student-1", 1000);
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(30);
    bench_raw(&mut group, &raw, bytes);
    let payloads: Vec<Vec<u8>> = (0..1000).map(|_| rng.bytes(200)).collect();
    group.bench_function("annals 1000 events", |b| {
        b.iter(|| {
            let events = payloads.iter().map(|p| {
                id += 1;
                EventData::new(TYPE, p.clone()).id(id)
            });
            store
                .append("student-1", ExpectedVersion::Any, events)
                .expect("append")
        })
    });
    group.finish();
}

fn w2(c: &mut Criterion) {
    const THREADS: u64 = 64;
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
    let raw = raw_file(dir.path());
    let store = Store::open(dir.path().join("store")).expect("open");
    let payload = Rng::new(2).bytes(200);
    // Next version of each thread's stream.
    let versions: Vec<Mutex<u64>> = (0..THREADS).map(|_| Mutex::new(0)).collect();
    let latencies = Mutex::new(Vec::new());

    let mut group = c.benchmark_group("append-64x1");
    group.throughput(Throughput::Elements(1));
    bench_raw(&mut group, &raw, 256);
    group.bench_function("annals 64 threads", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters.div_ceil(THREADS);
            let barrier = Barrier::new(THREADS as usize + 1);
            let started = std::thread::scope(|s| {
                for t in 0..THREADS {
                    let (store, barrier, payload) = (&store, &barrier, &payload);
                    let (version, latencies) = (&versions[t as usize], &latencies);
                    s.spawn(move || {
                        let stream = format!("student-{t}");
                        let mut mine = Vec::with_capacity(per_thread as usize);
                        let mut v = version.lock().expect("version");
                        barrier.wait();
                        for _ in 0..per_thread {
                            let expected = match *v {
                                0 => ExpectedVersion::NoStream,
                                n => ExpectedVersion::Exact(n - 1),
                            };
                            let event = EventData::new(TYPE, payload.clone())
                                .id(u128::from(t) << 64 | u128::from(*v));
                            let t0 = Instant::now();
                            store.append(&stream, expected, [event]).expect("append");
                            mine.push(t0.elapsed());
                            *v += 1;
                        }
                        latencies.lock().expect("latencies").extend(mine);
                    });
                }
                barrier.wait();
                Instant::now()
            });
            let elapsed = started.elapsed();
            // Scale to the iterations asked for (each thread ran a whole share).
            elapsed.mul_f64(iters as f64 / (per_thread * THREADS) as f64)
        })
    });
    group.finish();
    report("W2", &mut latencies.into_inner().expect("latencies"));
}

fn report(workload: &str, latencies: &mut [Duration]) {
    if latencies.is_empty() {
        return;
    }
    eprintln!(
        "{workload} annals latency over {} appends: p50 {:.1?}, p99 {:.1?}",
        latencies.len(),
        percentile(latencies, 50),
        percentile(latencies, 99)
    );
}

criterion_group!(benches, w1_w3, w2);
criterion_main!(benches);
