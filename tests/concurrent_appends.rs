//! Many threads appending at once, with readers replaying meanwhile: positions stay dense and
//! in commit order, versions dense per stream, expected versions hold, and a reader never sees
//! part of an append (invariants 2 and 3).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use annals::{Error, EventData, ExpectedVersion, Store};

const THREADS: u64 = 8;
const APPENDS: u64 = 150;

/// Payload: thread, append number, index in the append, events in the append.
fn payload(t: u64, a: u64, i: u64, n: u64) -> Vec<u8> {
    [t, a, i, n].iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn words(p: &[u8]) -> [u64; 4] {
    std::array::from_fn(|k| u64::from_le_bytes(p[k * 8..k * 8 + 8].try_into().unwrap()))
}

#[test]
fn concurrent_appends_are_dense_atomic_and_readable_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), common::small_segments()).unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let store = store.clone();
            s.spawn(move || {
                let own = format!("own-{t}");
                for a in 0..APPENDS {
                    let n = 1 + (a + t) % 3;
                    let events = || (0..n).map(move |i| EventData::new("E", payload(t, a, i, n)));
                    // Each thread's own stream, with an exact expected version: never contended.
                    let expected = match version_before(a, t) {
                        0 => ExpectedVersion::NoStream,
                        n => ExpectedVersion::Exact(n - 1),
                    };
                    let r = store.append(&own, expected, events()).unwrap();
                    assert_eq!(r.last_version + 1, version_before(a + 1, t));
                    // A shared stream, with any version.
                    store
                        .append("shared", ExpectedVersion::Any, events())
                        .unwrap();
                }
            });
        }
        // Readers replay while the writers run: every prefix they see is whole appends.
        for _ in 0..2 {
            let store = store.clone();
            let done = &done;
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let mut open: Option<[u64; 4]> = None;
                    for (p, ev) in (0u64..).zip(store.read_all(0)) {
                        let ev = ev.unwrap();
                        assert_eq!(ev.position(), p);
                        let w = words(ev.payload());
                        if let Some(prev) = open {
                            assert_eq!((w[0], w[1], w[2]), (prev[0], prev[1], prev[2] + 1));
                        } else {
                            assert_eq!(w[2], 0, "an append seen from its middle");
                        }
                        open = (w[2] + 1 < w[3]).then_some(w);
                    }
                    assert_eq!(open, None, "a reader saw part of an append");
                }
            });
        }
        s.spawn(|| {
            // Stops the readers once every writer is done.
            while store.next_position() < expected_events() {
                std::thread::yield_now();
            }
            done.store(true, Ordering::Relaxed);
        });
    });

    let mut versions: HashMap<String, u64> = HashMap::new();
    let events = common::read_everything(&store);
    assert_eq!(events.len() as u64, expected_events());
    for ev in &events {
        let v = versions.entry(ev.stream().to_string()).or_insert(0);
        assert_eq!(ev.version(), *v, "versions of {} are dense", ev.stream());
        *v += 1;
    }
    assert_eq!(versions.len() as u64, THREADS + 1);
    // The expected version of a stale writer fails and writes nothing.
    let before = store.next_position();
    match store.append(
        "own-0",
        ExpectedVersion::Exact(0),
        [EventData::new("E", vec![])],
    ) {
        Err(Error::WrongExpectedVersion {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, "own-0");
            assert_eq!(expected, ExpectedVersion::Exact(0));
            assert_eq!(actual, Some(version_before(APPENDS, 0) - 1));
        }
        other => panic!("expected WrongExpectedVersion, got {other:?}"),
    }
    assert_eq!(store.next_position(), before);
}

/// Number of events in thread `t`'s own stream before its append `a`.
fn version_before(a: u64, t: u64) -> u64 {
    (0..a).map(|k| 1 + (k + t) % 3).sum()
}

fn expected_events() -> u64 {
    (0..THREADS).map(|t| 2 * version_before(APPENDS, t)).sum()
}
