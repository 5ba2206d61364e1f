//! Projections at scale: the partitioned replay hands every event to exactly one worker, the
//! events of one key to one worker in position order, across segments, holes and reopens.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;

use annals::{Error, ExpectedVersion, Store};
use common::{event, read_everything, small_segments};

fn fill(store: &Store, n: u64) {
    for i in 0..n {
        let stream = format!("school-{}-student-{}", i % 7, i % 23);
        store
            .append(&stream, ExpectedVersion::Any, [event(&stream, i)])
            .expect("append");
    }
}

fn school(stream: &str) -> String {
    stream.split('-').take(2).collect::<Vec<_>>().join("-")
}

/// Runs the partitioned replay from `from` and checks it against `read_all(from)`.
fn check_replay(store: &Store, from: u64, workers: usize) {
    let seen: Vec<Mutex<Vec<(u64, String)>>> =
        (0..workers).map(|_| Mutex::new(Vec::new())).collect();
    let handled = store
        .replay_partitioned(
            from,
            workers,
            |ev| school(ev.stream()),
            |worker, ev| {
                let mut seen = seen[worker].lock().unwrap();
                seen.push((ev.position(), ev.stream().to_string()));
            },
        )
        .expect("replay_partitioned");
    let expected: Vec<u64> = store
        .read_all(from)
        .map(|e| e.expect("read_all").position())
        .collect();
    assert_eq!(handled, expected.len() as u64);
    let mut all: Vec<u64> = Vec::new();
    let mut worker_of: HashMap<String, usize> = HashMap::new();
    for (worker, seen) in seen.iter().enumerate() {
        let seen = seen.lock().unwrap();
        // Each worker got its events in position order...
        assert!(
            seen.windows(2).all(|w| w[0].0 < w[1].0),
            "worker {worker} out of order"
        );
        for (position, stream) in seen.iter() {
            all.push(*position);
            // ...and every event of a key went to the same worker.
            let owner = *worker_of.entry(school(stream)).or_insert(worker);
            assert_eq!(owner, worker, "{stream} on two workers");
        }
    }
    all.sort_unstable();
    assert_eq!(all, expected, "each event exactly once");
    if workers > 1 && expected.len() > 100 {
        let busy: Vec<usize> = seen.iter().map(|s| s.lock().unwrap().len()).collect();
        let working = busy.iter().filter(|&&n| n > 0).count();
        assert!(working > 1, "{workers} workers from {from}: {busy:?}");
    }
}

#[test]
fn a_partitioned_replay_hands_each_event_to_one_worker_in_order_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, 3_000);
    for workers in [1, 2, 4] {
        check_replay(&store, 0, workers);
    }
    check_replay(&store, 1_234, 3);
    check_replay(&store, 3_000, 2);
    assert!(matches!(
        store.replay_partitioned(0, 0, |_| 0, |_, _| {}),
        Err(Error::InvalidInput(_))
    ));
    // Across a reopen and the holes compaction leaves.
    drop(store);
    let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
    store
        .delete_stream("school-3-student-3", ExpectedVersion::Any)
        .expect("delete");
    fill(&store, 500);
    store.compact().expect("compact");
    assert!(read_everything(&store).len() < 3_500);
    check_replay(&store, 0, 3);
}
