//! kill -9 during compaction and erasure: a child process appends to streams that keep
//! everything, to a stream with a retention limit and to personal streams that it erases one
//! after another, and compacts now and then, while the parent kills it at random moments.
//! After each kill the store opens; every acknowledged event of the kept streams is there
//! with its bytes; every erasure that returned left no byte of its stream; running an
//! interrupted erasure again finishes it; compaction runs to the end; `verify` finds nothing.
//!
//! `ANNALS_KILL_CYCLES=100 cargo test --release --test kill_compaction -- --nocapture` runs
//! the long mode; the default run does 4 cycles.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use annals::{verify, EventData, ExpectedVersion, Options, Retention, Store};
use common::child::spawn_self;
use common::{event, payload, Rng};

const CHILD_ENV: &str = "ANNALS_KILL_COMPACT_CHILD";
const TEST: &str = "kill_9_during_compaction_and_erasure";

fn options() -> Options {
    Options::default().segment_size(annals::MIN_SEGMENT_SIZE)
}

/// The bytes that mark personal stream `name` in every one of its events.
fn secret(name: &str) -> Vec<u8> {
    format!("SECRET<{name}>").into_bytes()
}

/// The child: appends, erases and compacts until killed, printing what returned.
fn child(dir: &Path, cycle: u64) {
    let store = Store::open_with(dir, options()).expect("child open");
    store
        .set_retention("trim-1", Retention::default().max_count(5))
        .expect("retention");
    let mut out = std::io::stdout();
    for i in 0u64.. {
        let n = cycle * 1_000_000 + i;
        let stream = format!("keep-{}", n % 4);
        let r = store
            .append(&stream, ExpectedVersion::Any, [event(&stream, n)])
            .expect("append");
        writeln!(out, "ack {stream} {n} {}", r.first_position).expect("stdout");
        store
            .append(
                "trim-1",
                ExpectedVersion::Any,
                [EventData::new("Trim", vec![0; 300])],
            )
            .expect("append trim");
        let personal = format!("gdpr-{cycle}-{}", i / 30);
        if i % 3 == 0 {
            let mut p = secret(&personal);
            p.resize(200, b'.');
            store
                .append(
                    &personal,
                    ExpectedVersion::Any,
                    [EventData::new("Personal", p)],
                )
                .expect("append personal");
        }
        if i % 30 == 29 {
            writeln!(out, "erasing {personal}").expect("stdout");
            store.erase_stream(&personal).expect("erase");
            writeln!(out, "erased {personal}").expect("stdout");
        }
        if i % 45 == 44 {
            store.compact().expect("compact");
            writeln!(out, "compacted").expect("stdout");
        }
        out.flush().expect("flush");
    }
}

/// The files under `dir` holding any of `needles`, with the needle found.
fn files_containing(dir: &Path, needles: &[Vec<u8>]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(files_containing(&path, needles));
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        // Every needle starts with the same marker: look for it, then compare.
        for at in bytes
            .windows(7)
            .enumerate()
            .filter(|(_, w)| w == b"SECRET<")
            .map(|(i, _)| i)
        {
            for needle in needles {
                if bytes[at..].starts_with(needle) {
                    let needle = String::from_utf8_lossy(needle).into_owned();
                    found.push((path.display().to_string(), needle));
                }
            }
        }
    }
    found
}

#[test]
fn kill_9_during_compaction_and_erasure() {
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        let (dir, cycle) = arg.split_once('|').expect("child argument");
        child(Path::new(dir), cycle.parse().expect("cycle"));
        return;
    }
    let cycles: u64 = std::env::var("ANNALS_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let mut rng = Rng::from_clock(TEST);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: HashMap<u64, (String, u64)> = HashMap::new();
    let mut erased: BTreeSet<String> = BTreeSet::new();
    let (mut erasures, mut compactions, mut interrupted) = (0, 0, 0);
    for cycle in 0..cycles {
        let arg = format!("{}|{cycle}", dir.path().display());
        let (mut child, lines) = spawn_self(TEST, CHILD_ENV, &arg);
        let kill_at = Instant::now() + Duration::from_millis(100 + rng.below(700));
        let mut erasing = None;
        while let Ok(line) = lines.recv_timeout(kill_at.saturating_duration_since(Instant::now())) {
            let words: Vec<&str> = line.split(' ').collect();
            match words[..] {
                ["ack", stream, n, position] => {
                    let key = position.parse().expect("position");
                    acked.insert(key, (stream.to_string(), n.parse().expect("n")));
                }
                ["erasing", name] => erasing = Some(name.to_string()),
                ["erased", name] => {
                    erasures += 1;
                    erasing = None;
                    erased.insert(name.to_string());
                }
                ["compacted"] => compactions += 1,
                _ => {}
            }
            if Instant::now() >= kill_at {
                break;
            }
        }
        child.kill_9();

        let store = Store::open_with(dir.path(), options()).expect("open after kill");
        let all: HashMap<u64, annals::RecordedEvent> = store
            .read_all(0)
            .map(|e| e.expect("read_all after kill"))
            .map(|e| (e.position(), e))
            .collect();
        for (position, (stream, n)) in &acked {
            let ev = all
                .get(position)
                .unwrap_or_else(|| panic!("acknowledged event at {position} lost (cycle {cycle})"));
            assert_eq!(ev.stream(), stream);
            assert_eq!(ev.payload(), payload(stream, *n).as_slice());
        }
        for name in &erased {
            assert_eq!(store.stream_version(name), None, "{name} came back");
        }
        if let Some(name) = erasing {
            // Killed while erasing: running it again finishes the job.
            interrupted += 1;
            store.erase_stream(&name).expect("erase again");
            erased.insert(name);
        }
        store.compact().expect("compact after kill");
        drop(store);
        let needles: Vec<Vec<u8>> = erased.iter().map(|name| secret(name)).collect();
        let found = files_containing(dir.path(), &needles);
        assert!(found.is_empty(), "erased streams are still in {found:?}");
        let report = verify(dir.path()).expect("verify");
        assert!(report.is_sound(), "cycle {cycle}: {report:?}");
    }
    eprintln!(
        "{TEST}: {cycles} kills; {} acknowledged events all present; {erasures} erasures \
         returned, {interrupted} interrupted and finished on a re-run; {compactions} compactions",
        acked.len()
    );
    assert!(!acked.is_empty());
}
