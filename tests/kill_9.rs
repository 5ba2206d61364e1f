//! kill -9 while appending: every acknowledged append is present after reopen, and no part of
//! an append is visible unless all of it is (invariants 1 and 2). One test kills a single
//! appender 6 times; the crash loop kills a process with 4 concurrent appenders 50 times.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use annals::{EventData, ExpectedVersion, Options, Store};
use common::child::spawn_self;
use common::Rng;

const CHILD_ENV: &str = "ANNALS_KILL9_CHILD";

fn options() -> Options {
    Options::default().segment_size(annals::MIN_SEGMENT_SIZE)
}

/// The payload of event `index` of an append of `count` events with id `append`.
fn payload(append: u64, index: u64, count: u64) -> Vec<u8> {
    let mut p = Vec::with_capacity(200);
    for v in [append, index, count] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p.resize(200, (append ^ index) as u8);
    p
}

fn parse(p: &[u8]) -> (u64, u64, u64) {
    let word = |i: usize| u64::from_le_bytes(p[i * 8..i * 8 + 8].try_into().unwrap());
    (word(0), word(1), word(2))
}

/// The child: `threads` threads append batches of 1 to 5 events forever, printing each
/// acknowledged append as `ack <append id> <first position> <count>`.
fn child(value: &str) -> ! {
    let mut parts = value.split('|');
    let (dir, cycle, threads) = (
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
    );
    let store = Store::open_with(dir, options()).unwrap();
    let out = Mutex::new(std::io::stdout());
    // The harness has printed "test name ... " without a newline.
    writeln!(out.lock().unwrap()).unwrap();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (store, out) = (&store, &out);
            s.spawn(move || {
                let mut rng = Rng::new(cycle * 1000 + t + 1);
                for counter in 0.. {
                    let append = cycle << 40 | t << 32 | counter;
                    let count = 1 + rng.below(5);
                    let stream = format!("stream-{}", rng.below(10));
                    let events =
                        (0..count).map(|i| EventData::new("Tick", payload(append, i, count)));
                    let r = store.append(&stream, ExpectedVersion::Any, events).unwrap();
                    let mut out = out.lock().unwrap();
                    writeln!(out, "ack {append} {} {count}", r.first_position).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
    unreachable!()
}

/// Runs `cycles` cycles of: start a child with `threads` appenders, let it acknowledge some
/// appends, kill it with SIGKILL at a random moment up to `max_ms` later, reopen and check.
fn crash_cycles(test: &str, cycles: u64, threads: u64, max_ms: u64) {
    if let Ok(value) = std::env::var(CHILD_ENV) {
        child(&value);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::from_clock(test);
    // append id -> (first position, count), for every acknowledged append
    let mut acked: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for cycle in 0..cycles {
        let value = format!("{}|{cycle}|{threads}", dir.path().display());
        let (mut child, lines) = spawn_self(test, CHILD_ENV, &value);
        let mut seen = Vec::new();
        while !seen.iter().any(|l: &String| l.starts_with("ack ")) {
            seen.push(lines.recv_timeout(Duration::from_secs(60)).unwrap());
        }
        let kill_at = Instant::now() + Duration::from_millis(rng.below(max_ms));
        while let Some(left) = kill_at.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        child.kill_9();
        seen.extend(lines.try_iter());
        for line in seen.iter().filter_map(|l| l.strip_prefix("ack ")) {
            let v: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
            acked.insert(v[0], (v[1], v[2]));
        }
        check(dir.path(), cycle, &acked);
    }
}

/// Every acknowledged append is in the store, whole and in place; no append is partial;
/// positions are dense.
fn check(dir: &std::path::Path, cycle: u64, acked: &BTreeMap<u64, (u64, u64)>) {
    let store = Store::open_with(dir, options()).unwrap();
    let mut stored: BTreeMap<u64, Vec<(u64, u64, u64)>> = BTreeMap::new();
    for (p, ev) in (0u64..).zip(store.read_all(0)) {
        let ev = ev.unwrap();
        assert_eq!(ev.position(), p, "positions are dense");
        let (append, index, count) = parse(ev.payload());
        assert_eq!(ev.payload(), payload(append, index, count).as_slice());
        stored
            .entry(append)
            .or_default()
            .push((ev.position(), index, count));
    }
    for (append, events) in &stored {
        let count = events[0].2;
        assert_eq!(
            events.len() as u64,
            count,
            "append {append} is partial: {events:?}"
        );
        for (i, (pos, index, _)) in (0u64..).zip(events) {
            assert_eq!(
                (*pos, *index),
                (events[0].0 + i, i),
                "append {append} is not contiguous"
            );
        }
    }
    for (append, (first, count)) in acked {
        let events = stored
            .get(append)
            .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged append {append} lost"));
        assert_eq!((events[0].0, events.len() as u64), (*first, *count));
    }
    eprintln!(
        "cycle {cycle}: {} acknowledged, {} stored, cut: {:?}",
        acked.len(),
        stored.len(),
        store.open_report().cut
    );
}

#[test]
fn kill_9_never_loses_an_acknowledged_append() {
    crash_cycles("kill_9_never_loses_an_acknowledged_append", 6, 1, 300);
}

#[test]
fn crash_loop_with_concurrent_appenders() {
    crash_cycles("crash_loop_with_concurrent_appenders", 50, 4, 100);
}
