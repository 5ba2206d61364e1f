//! Appends events to a fresh store, closes it, reopens it and replays everything, printing
//! what it did and how fast.
//!
//! ```text
//! cargo run --release --example quickstart [-- DIR]
//! ```
//!
//! Without `DIR` the store lives in a temporary directory that is removed at the end.

use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Store};

const STREAMS: u64 = 1_000;
const SINGLE_APPENDS: u64 = 2_000;
const BATCHES: u64 = 1_000;
const BATCH: u64 = 1_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let temp;
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    println!("annals quickstart in {}", dir.display());

    let store = Store::open(&dir)?;
    let start_position = store.next_position();
    let payload = |n: u64| -> Vec<u8> { (0..200u64).map(|i| (i * 31 + n) as u8).collect() };

    // 1. Durable appends of one event each: every call returns after fdatasync.
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(SINGLE_APPENDS as usize);
    for n in 0..SINGLE_APPENDS {
        let t = Instant::now();
        store.append(
            &format!("student-{}", n % STREAMS),
            ExpectedVersion::Any,
            [EventData::new("QuestionAnswered", payload(n)).id(u128::from(n))],
        )?;
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    latencies.sort();
    println!(
        "appended {SINGLE_APPENDS} events one durable append at a time in {:.2?}: {:.0} events/s, \
         latency p50 {:.0?} p99 {:.0?}",
        elapsed,
        rate(SINGLE_APPENDS, elapsed),
        latencies[latencies.len() / 2],
        latencies[latencies.len() * 99 / 100],
    );

    // 2. Durable appends of 1,000 events each.
    let started = Instant::now();
    for b in 0..BATCHES {
        let events = (0..BATCH).map(|i| EventData::new("QuestionAnswered", payload(b * BATCH + i)));
        store.append(
            &format!("student-{}", b % STREAMS),
            ExpectedVersion::Any,
            events,
        )?;
    }
    let elapsed = started.elapsed();
    let total = BATCHES * BATCH;
    println!(
        "appended {total} events in durable batches of {BATCH} in {:.2?}: {:.0} events/s",
        elapsed,
        rate(total, elapsed)
    );
    store.close()?;

    // 3. Reopen and replay everything, checksums verified.
    let started = Instant::now();
    let store = Store::open(&dir)?;
    let report = store.open_report();
    println!(
        "reopened in {:.2?}: {} segments, {} events, {} streams",
        started.elapsed(),
        report.segments,
        report.events,
        report.streams
    );
    let started = Instant::now();
    let (mut events, mut bytes) = (0u64, 0usize);
    for event in store.read_all(start_position) {
        let event = event?;
        events += 1;
        bytes += event.payload().len();
    }
    let elapsed = started.elapsed();
    println!(
        "replayed {events} events ({:.1} MB of payload) in {:.2?}: {:.0} events/s",
        bytes as f64 / 1e6,
        elapsed,
        rate(events, elapsed)
    );
    // 4. Read one stream through the index: no scan of the log.
    let started = Instant::now();
    let versions = store.read_stream("student-7", 0).count();
    println!(
        "read stream student-7 ({versions} events, last version {:?}) in {:.0?}",
        store.stream_version("student-7"),
        started.elapsed()
    );

    // 5. Appending an event again (same id) is a no-op that returns the original position.
    let again = store.append(
        "student-7",
        ExpectedVersion::Any,
        [EventData::new("QuestionAnswered", payload(7)).id(7)],
    )?;
    println!(
        "appending event id 7 again: deduplicated = {}, original position {}",
        again.deduplicated, again.first_position
    );
    store.close()?;
    Ok(())
}

fn rate(events: u64, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64()
}
