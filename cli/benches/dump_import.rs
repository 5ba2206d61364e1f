//! `annals dump` and `annals import` speed, each next to a baseline from the same run:
//!
//! - a store of `ANNALS_BENCH_EVENTS` events (default 1,000,000; the README's figures use
//!   10,000,000) over a tenth as many streams, JSON payloads of about 200 bytes, ids, built
//!   with `Buffered` appends of one event (the build is timed too);
//! - `annals dump` of it to a file, against the library replaying the same store
//!   (`read_all`, owned events) in this process;
//! - `annals import` of that file into an empty directory, against the library appending the
//!   same events from memory, 1,000 at a time through `append_many` as import does.
//!
//! ```sh
//! ANNALS_BENCH_EVENTS=10000000 cargo bench -p annals-cli --bench dump_import
//! ```

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use annals::{Durability, EventData, ExpectedVersion, Options, Store};

fn main() {
    let events: u64 = std::env::var("ANNALS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let streams = (events / 10).max(1);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-cli");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench directory");
    let (src, dst, file) = (
        root.join("src"),
        root.join("dst"),
        root.join("events.jsonl"),
    );

    let started = Instant::now();
    let buffered = Options::default().durability(Durability::Buffered);
    let store = Store::open_with(&src, buffered.clone()).expect("open");
    let mut seed = 0x5eed_u64;
    for n in 0..events {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let stream = format!("student-{}", (seed >> 33) % streams);
        let payload = format!(
            r#"{{"student":{},"question":{},"answer":"{:0>160}","correct":{}}}"#,
            seed >> 40,
            n % 50,
            seed,
            n % 3 == 0
        );
        let event = EventData::new("QuestionAnswered", payload.into_bytes()).id(u128::from(n) + 1);
        store
            .append(&stream, ExpectedVersion::Any, [event])
            .expect("append");
    }
    store.close().expect("close");
    let build = started.elapsed();
    report(
        "build: Buffered appends of one event (library)",
        events,
        None,
        build,
    );

    let store = Store::open_read_only(&src).expect("open");
    let started = Instant::now();
    let mut replayed = Vec::with_capacity(events as usize);
    for ev in store.read_all(0) {
        replayed.push(ev.expect("read"));
    }
    report(
        "baseline: read_all into memory (library)",
        events,
        None,
        started.elapsed(),
    );

    let out = std::fs::File::create(&file).expect("create dump file");
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["dump".as_ref(), src.as_os_str()])
        .stdout(out)
        .status()
        .expect("run annals dump");
    let dump = started.elapsed();
    assert!(status.success(), "annals dump failed");
    let bytes = std::fs::metadata(&file).expect("dump file").len();
    report("annals dump > file", events, Some(bytes), dump);

    // The baseline for import: the same events appended from memory, batched like import
    // (1,000 events per `append_many`, consecutive events of one stream in one append).
    let copy = root.join("baseline");
    let started = Instant::now();
    let store = Store::open_with(&copy, buffered).expect("open");
    for chunk in replayed.chunks(1000) {
        let mut appends: Vec<(&str, ExpectedVersion, Vec<EventData>)> = Vec::new();
        for ev in chunk {
            let mut e = EventData::new(ev.event_type().to_string(), ev.payload().to_vec())
                .timestamp(ev.timestamp());
            if let Some(id) = ev.id() {
                e = e.id(id);
            }
            match appends.last_mut() {
                Some((stream, _, events)) if *stream == ev.stream() => events.push(e),
                _ => appends.push((ev.stream(), ExpectedVersion::Any, vec![e])),
            }
        }
        for result in store.append_many(appends).expect("append_many") {
            result.expect("append");
        }
    }
    store.close().expect("close");
    report(
        "baseline: the same appends from memory (library)",
        events,
        None,
        started.elapsed(),
    );

    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_annals"))
        .args(["import".as_ref(), dst.as_os_str(), file.as_os_str()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run annals import");
    let import = started.elapsed();
    assert!(status.success(), "annals import failed");
    report("annals import file", events, Some(bytes), import);
    let imported = Store::open_read_only(&dst).expect("open").next_position();
    assert_eq!(imported, events, "import lost events");
    std::fs::remove_dir_all(&root).expect("clean up");
}

fn report(what: &str, events: u64, bytes: Option<u64>, took: Duration) {
    let secs = took.as_secs_f64();
    let mb = bytes.map_or(String::new(), |b| {
        format!(
            ", {:.0} MB/s of JSON Lines ({:.2} GB)",
            b as f64 / secs / 1e6,
            b as f64 / 1e9
        )
    });
    println!(
        "{what:52} {events} events in {secs:.1} s: {:.0}k events/s{mb}",
        events as f64 / secs / 1e3
    );
}
