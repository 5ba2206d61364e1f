//! kill -9 while appending: every acknowledged append is present after reopen, and no part of
//! an append is visible unless all of it is (invariants 1 and 2). One test kills a single
//! appender 6 times; the soak kills a process with 8 concurrent appenders (mixed batch sizes,
//! expected versions, event ids and idempotent retries) again and again, some kills landing
//! while the store is still opening (recovery itself interrupted), and verifies after each.
//!
//! `ANNALS_SOAK_CYCLES=1000 cargo test --release --test kill_9 soak -- --nocapture` runs the
//! long soak; the default run does 40 cycles.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Options, Store};
use common::child::spawn_self;
use common::Rng;

const CHILD_ENV: &str = "ANNALS_KILL9_CHILD";
/// Streams each appender owns (and appends to with exact expected versions).
const OWN_STREAMS: u64 = 3;

fn options() -> Options {
    Options::default().segment_size(annals::MIN_SEGMENT_SIZE)
}

/// The payload of event `index` of an append of `count` events with id `append`.
fn payload(append: u64, index: u64, count: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(200);
    for v in [append, index, count] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.resize(120 + (append % 5) as usize * 40, (append ^ index) as u8);
    p
}

fn parse(p: &[u8]) -> (u64, u64, u64) {
    let word = |i: usize| u64::from_le_bytes(p[i * 8..i * 8 + 8].try_into().unwrap());
    (word(0), word(1), word(2))
}

/// An acknowledged append as the child reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ack {
    first_position: u64,
    count: u64,
    first_version: u64,
    stream: String,
}

/// One appender thread of the child: appends batches of 1 to 8 events (now and then 30) with
/// ids, to its own streams with exact expected versions or to a shared stream with `Any`;
/// now and then retries its previous append, which must be deduplicated to the same
/// positions. Prints `ack <append id> <first position> <count> <first version> <stream>`.
fn appender(store: &Store, out: &Mutex<std::io::Stdout>, cycle: u64, t: u64) {
    let mut rng = Rng::new(cycle * 1000 + t + 1);
    let mut last: Option<(String, ExpectedVersion, Vec<EventData>, u64)> = None;
    for counter in 0.. {
        let retry = if rng.below(10) == 0 {
            last.take()
        } else {
            None
        };
        let is_retry = retry.is_some();
        let (stream, expected, events, append) = match retry {
            Some(previous) => previous,
            None => {
                let append = cycle << 40 | t << 32 | counter;
                let count = if rng.below(20) == 0 {
                    30
                } else {
                    1 + rng.below(8)
                };
                let events: Vec<EventData> = (0..count)
                    .map(|i| {
                        EventData::new("Tick", payload(append, i, count))
                            .id(u128::from(append) << 16 | u128::from(i))
                    })
                    .collect();
                if rng.below(4) == 0 {
                    ("shared".to_string(), ExpectedVersion::Any, events, append)
                } else {
                    let stream = format!("t{t}-{}", rng.below(OWN_STREAMS));
                    let expected = match store.stream_version(&stream) {
                        Some(v) => ExpectedVersion::Exact(v),
                        None => ExpectedVersion::NoStream,
                    };
                    (stream, expected, events, append)
                }
            }
        };
        let r = store
            .append(&stream, expected, events.clone())
            .expect("append");
        assert_eq!(
            r.deduplicated, is_retry,
            "exactly the retries are deduplicated"
        );
        let count = r.last_position - r.first_position + 1;
        let mut out = out.lock().unwrap();
        writeln!(
            out,
            "ack {append} {} {count} {} {stream}",
            r.first_position, r.first_version
        )
        .unwrap();
        out.flush().unwrap();
        last = Some((stream, expected, events, append));
    }
}

/// The child: prints `opening`, opens the store, prints `opened`, then runs `threads`
/// appenders until it is killed.
fn child(value: &str) -> ! {
    let mut parts = value.split('|');
    let (dir, cycle, threads) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
    );
    let out = Mutex::new(std::io::stdout());
    // The harness has printed "test name ... " without a newline.
    writeln!(out.lock().unwrap(), "\nopening").unwrap();
    let store = Store::open_with(dir, options()).unwrap();
    writeln!(out.lock().unwrap(), "opened").unwrap();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (store, out) = (&store, &out);
            s.spawn(move || appender(store, out, cycle, t));
        }
    });
    unreachable!()
}

/// Runs `cycles` cycles of: start a child with `threads` appenders, let it acknowledge some
/// appends, kill it with SIGKILL at a random moment up to `max_ms` later (or, one cycle in
/// four, at a random moment while it opens the store), reopen and check. Starts a new store
/// every `per_store` cycles, so that checking stays quick.
fn crash_cycles(test: &str, cycles: u64, threads: u64, max_ms: u64, per_store: u64) {
    if let Ok(value) = std::env::var(CHILD_ENV) {
        child(&value);
    }
    let mut rng = Rng::from_clock(test);
    let started = Instant::now();
    let (mut during_open, mut total_acked) = (0, 0);
    let mut dir = tempfile::tempdir().unwrap();
    // append id -> what the child reported, for every acknowledged append
    let mut acked: BTreeMap<u64, Ack> = BTreeMap::new();
    for cycle in 0..cycles {
        if cycle % per_store == 0 {
            dir = tempfile::tempdir().unwrap();
            acked.clear();
        }
        let value = format!("{}|{cycle}|{threads}", dir.path().display());
        let (mut child, lines) = spawn_self(test, CHILD_ENV, &value);
        let mut seen = Vec::new();
        let kill_in_open = cycle % 4 == 3;
        let wait_for = if kill_in_open { "opening" } else { "ack " };
        while !seen.iter().any(|l: &String| l.starts_with(wait_for)) {
            seen.push(lines.recv_timeout(Duration::from_secs(60)).unwrap());
        }
        let delay = if kill_in_open {
            Duration::from_micros(rng.below(300))
        } else {
            Duration::from_millis(rng.below(max_ms))
        };
        let kill_at = Instant::now() + delay;
        while let Some(left) = kill_at.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        child.kill_9();
        seen.extend(lines.try_iter());
        if !seen.iter().any(|l| l == "opened") {
            during_open += 1;
        }
        for line in seen.iter().filter_map(|l| l.strip_prefix("ack ")) {
            let v: Vec<&str> = line.split(' ').collect();
            let n = |i: usize| v[i].parse::<u64>().unwrap();
            let ack = Ack {
                first_position: n(1),
                count: n(2),
                first_version: n(3),
                stream: v[4].to_string(),
            };
            if let Some(earlier) = acked.insert(n(0), ack.clone()) {
                assert_eq!(earlier, ack, "a retry was not deduplicated to the original");
            }
            total_acked += 1;
        }
        check(dir.path(), cycle, &acked);
    }
    eprintln!(
        "{test}: {cycles} kill -9 cycles verified ({during_open} killed before the store was \
         open), {total_acked} acknowledged appends, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Every acknowledged append is in the store, whole and in place; no append is partial or
/// twice; positions are dense; each stream's versions are dense.
fn check(dir: &std::path::Path, cycle: u64, acked: &BTreeMap<u64, Ack>) {
    let store = Store::open_with(dir, options()).unwrap();
    let mut stored: BTreeMap<u64, Vec<(u64, u64, u64, u64)>> = BTreeMap::new();
    let mut versions: HashMap<String, u64> = HashMap::new();
    for (p, ev) in (0u64..).zip(store.read_all(0)) {
        let ev = ev.unwrap();
        assert_eq!(ev.position(), p, "positions are dense");
        let version = versions.entry(ev.stream().to_string()).or_insert(0);
        assert_eq!(
            ev.version(),
            *version,
            "versions of {} are dense",
            ev.stream()
        );
        *version += 1;
        let (append, index, count) = parse(ev.payload());
        assert_eq!(ev.payload(), payload(append, index, count).as_slice());
        assert_eq!(ev.id(), Some(u128::from(append) << 16 | u128::from(index)));
        stored
            .entry(append)
            .or_default()
            .push((ev.position(), index, count, ev.version()));
    }
    for (append, events) in &stored {
        let count = events[0].2;
        assert_eq!(
            events.len() as u64,
            count,
            "append {append} is partial or twice: {events:?}"
        );
        for (i, (pos, index, _, version)) in (0u64..).zip(events) {
            assert_eq!(
                (*pos, *index, *version),
                (events[0].0 + i, i, events[0].3 + i),
                "append {append} is not contiguous"
            );
        }
    }
    for (append, ack) in acked {
        let events = stored
            .get(append)
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged append {append} lost"));
        assert_eq!(
            (events[0].0, events.len() as u64, events[0].3),
            (ack.first_position, ack.count, ack.first_version),
            "cycle {cycle}: append {append} moved"
        );
    }
}

#[test]
fn kill_9_never_loses_an_acknowledged_append() {
    crash_cycles("kill_9_never_loses_an_acknowledged_append", 6, 1, 300, 6);
}

#[test]
fn soak_kill_9_with_eight_appenders() {
    let cycles = std::env::var("ANNALS_SOAK_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(40);
    crash_cycles("soak_kill_9_with_eight_appenders", cycles, 8, 100, 25);
}
