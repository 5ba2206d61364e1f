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

/// The events of `read_all(from)` that `keep` picks, as positions.
fn filtered(store: &Store, from: u64, keep: impl Fn(&annals::RecordedEvent) -> bool) -> Vec<u64> {
    store
        .read_all(from)
        .map(|e| e.expect("read_all"))
        .filter(|e| keep(e))
        .map(|e| e.position())
        .collect()
}

fn positions(read: annals::ReadIndexed) -> Vec<u64> {
    read.map(|e| e.expect("indexed read").position()).collect()
}

/// Every type and category read equals the filter of `read_all`, from a few positions.
fn check_indexed_reads(store: &Store) {
    let next = store.next_position();
    for from in [0, 1, next / 3, next / 2 + 7, next] {
        for t in 0..5 {
            let ty = format!("Type{t}");
            assert_eq!(
                positions(store.read_by_type(&ty, from)),
                filtered(store, from, |e| e.event_type() == ty),
                "type {ty} from {from}"
            );
        }
        for category in ["school", "order", "nothing"] {
            assert_eq!(
                positions(store.read_category(category, from)),
                filtered(store, from, |e| e.stream().split_once('-').map(|c| c.0)
                    == Some(category)),
                "category {category} from {from}"
            );
        }
    }
}

#[test]
fn reads_by_type_and_category_equal_the_filters_of_read_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, 2_000);
    for i in 0..300u64 {
        let stream = if i % 2 == 0 {
            "order-1".to_string()
        } else {
            format!("orderless{i}")
        };
        store
            .append(&stream, ExpectedVersion::Any, [event(&stream, i)])
            .expect("append");
    }
    // Sealed segments (their files written by the writer's thread) and the tail.
    check_indexed_reads(&store);
    fill(&store, 100);
    check_indexed_reads(&store);
    drop(store);
    let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
    check_indexed_reads(&store);
    let tix: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tix"))
        .collect();
    assert!(tix.len() > 3, "{tix:?}");
    // Missing, stale and damaged index files are rebuilt in memory, never believed.
    std::fs::remove_file(&tix[0]).expect("remove");
    let len = std::fs::metadata(&tix[1]).expect("stat").len() as usize;
    common::overwrite(&tix[1], len - 3, &[0xAA]);
    common::overwrite(&tix[2], 70, &[0xAA]);
    drop(store);
    let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
    check_indexed_reads(&store);
    // Holes: compaction and erasure remove events; the reads skip them.
    store
        .delete_stream("school-1-student-1", ExpectedVersion::Any)
        .expect("delete");
    store.compact().expect("compact");
    store.erase_stream("order-1").expect("erase");
    check_indexed_reads(&store);
    assert!(positions(store.read_category("order", 0)).is_empty());
    let reader = Store::open_read_only(dir.path()).expect("read-only");
    check_indexed_reads(&reader);
}

#[test]
fn position_at_finds_the_first_event_stamped_at_or_after_a_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    // Stamped 10 µs apart, over many segments.
    for i in 0..2_000u64 {
        let ev = event("clock-1", i).timestamp(1_000_000 + 10 * i);
        store
            .append("clock-1", ExpectedVersion::Any, [ev])
            .expect("append");
    }
    for (time, expected) in [
        (0, 0),
        (1_000_000, 0),
        (1_000_001, 1),
        (1_000_010, 1),
        (1_010_005, 1_001),
        (1_000_000 + 10 * 1_999, 1_999),
        (1_000_000 + 10 * 1_999 + 1, 2_000),
    ] {
        assert_eq!(
            store.position_at(time).expect("position_at"),
            expected,
            "{time}"
        );
    }
    // After compaction removed the oldest events, it lands on what is left.
    store
        .set_retention("clock-1", annals::Retention::default().max_count(500))
        .expect("retention");
    store.compact().expect("compact");
    let first_left = store
        .read_all(0)
        .next()
        .expect("one")
        .expect("read")
        .position();
    assert!(first_left > 0);
    assert_eq!(store.position_at(0).expect("position_at"), first_left);
    assert_eq!(
        store.position_at(1_010_005).expect("position_at"),
        first_left.max(1_001)
    );
}
