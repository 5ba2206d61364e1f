//! Projections at scale: the partitioned replay hands every event to exactly one worker, the
//! events of one key to one worker in position order, across segments, holes and reopens.

mod common;

use std::collections::HashMap;
use std::sync::Mutex;

use annals::{Error, ExpectedVersion, Store};
use common::{event, read_everything, small_segments};

/// Appends `n` events, each new (numbered from the store's next position on).
fn fill(store: &Store, n: u64) {
    let start = store.next_position();
    for i in start..start + n {
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
    // A writable opening writes missing files back (a store from before these files, or
    // restored from a backup, gets them).
    drop(store);
    let tix: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "tix"))
        .collect();
    for p in &tix {
        std::fs::remove_file(p).expect("remove");
    }
    let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !tix.iter().all(|p| p.exists()) {
        let waited_too_long = std::time::Instant::now() > deadline;
        assert!(!waited_too_long, "missing index files not written again");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(store);
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

const CHILD_ENV: &str = "ANNALS_PARTITIONED_CHILD";
const KILL_TEST: &str = "a_killed_partitioned_subscription_loses_nothing_on_restart";
const EVENTS: u64 = 20_000;

/// The child: follows the store read-only on 3 workers, printing each event it handled.
fn partitioned_child(dir: &str) {
    use std::io::Write;
    let store = Store::open_read_only(dir).expect("child open");
    let out = std::sync::Mutex::new(std::io::stdout());
    let _sub = store
        .subscribe_partitioned(
            "projector",
            3,
            |ev| school(ev.stream()),
            move |_, ev| {
                // A handler with some cost, so that the kill lands while work is in flight.
                std::thread::sleep(std::time::Duration::from_micros(20));
                let mut out = out.lock().unwrap();
                writeln!(out, "handled {}", ev.position()).expect("stdout");
                out.flush().expect("flush");
            },
        )
        .expect("subscribe_partitioned");
    std::thread::sleep(std::time::Duration::from_secs(600));
}

#[test]
fn a_killed_partitioned_subscription_loses_nothing_on_restart() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        partitioned_child(&dir);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open_with(dir.path(), small_segments()).expect("open");
        fill(&store, EVENTS);
    }
    let path = dir.path().to_str().expect("UTF-8").to_string();
    let mut handled = std::collections::HashSet::new();
    let mut checkpoints: Vec<u64> = Vec::new();
    for round in 0..3 {
        let (mut child, lines) = common::child::spawn_self(KILL_TEST, CHILD_ENV, &path);
        let deadline =
            std::time::Instant::now() + std::time::Duration::from_millis(400 + 300 * round);
        while let Ok(line) =
            lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            // The test harness may print its own words before the first line.
            if let Some((_, p)) = line.rsplit_once("handled ") {
                handled.insert(p.parse::<u64>().expect("position"));
            }
        }
        child.kill_9();
        let store = Store::open_read_only(dir.path()).expect("open");
        let checkpoint = store
            .checkpoint("projector")
            .expect("checkpoint")
            .unwrap_or(0);
        // Every event below the checkpoint was handled before the kill.
        let missing: Vec<u64> = (0..checkpoint).filter(|p| !handled.contains(p)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: checkpoint {checkpoint} passed {missing:?}"
        );
        checkpoints.push(checkpoint);
    }
    assert!(
        checkpoints.iter().any(|&c| c > 0),
        "none saved: {checkpoints:?}"
    );
    // A last run from the checkpoint finishes the job: nothing was lost.
    let store = Store::open_read_only(dir.path()).expect("open");
    let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
    let s = std::sync::Arc::clone(&seen);
    let sub = store
        .subscribe_partitioned(
            "projector",
            3,
            |ev| school(ev.stream()),
            move |_, ev| {
                s.lock().unwrap().push(ev.position());
            },
        )
        .expect("subscribe_partitioned");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sub.checkpoint() < EVENTS {
        assert!(
            std::time::Instant::now() < deadline,
            "the last run did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(sub.stop().expect("stop"), EVENTS);
    handled.extend(seen.lock().unwrap().iter().copied());
    assert_eq!(
        handled.len() as u64,
        EVENTS,
        "every event handled at least once"
    );
}

#[test]
fn filtered_subscriptions_catch_up_through_the_indexes_then_follow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, 2_500);
    let next = |sub: &mut annals::Subscription| {
        sub.next_timeout(std::time::Duration::from_millis(30))
            .expect("subscription")
    };
    for from in [0, 777] {
        let mut sub = store.subscribe_all(from).event_types(["Type1", "Type3"]);
        let mut got = Vec::new();
        while let Some(ev) = next(&mut sub) {
            got.push(ev.position());
        }
        let expected = filtered(&store, from, |e| {
            ["Type1", "Type3"].contains(&e.event_type())
        });
        assert_eq!(got, expected, "types from {from}");
        assert_eq!(sub.position(), store.next_position());
        let mut sub = store.subscribe_all(from).category("school");
        let mut got = Vec::new();
        while let Some(ev) = next(&mut sub) {
            got.push(ev.position());
        }
        assert_eq!(
            got,
            filtered(&store, from, |e| e.stream().starts_with("school-"))
        );
        // Then it follows live appends, filtered.
        store
            .append(
                "school-9-student-1",
                ExpectedVersion::Any,
                [event("x", from + 1)],
            )
            .expect("append");
        store
            .append("cart-1", ExpectedVersion::Any, [event("x", from + 2)])
            .expect("append");
        let live = next(&mut sub).expect("the live event");
        assert_eq!(live.stream(), "school-9-student-1");
        assert!(next(&mut sub).is_none());
    }
}

#[test]
fn a_filtered_subscription_started_past_the_end_it_sees_waits_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, 900);
    let reader = Store::open_read_only(dir.path()).expect("read-only");
    fill(&store, 100);
    // A checkpoint the writer's consumer saved, beyond what the reader has seen yet.
    let mut sub = reader.subscribe_all(1_000).event_types(["Type2"]);
    assert!(sub.try_next().expect("try_next").is_none());
    assert_eq!(sub.position(), 1_000);
    store
        .append(
            "school-1-student-1",
            ExpectedVersion::Any,
            [event("late", 7)],
        )
        .expect("append");
    reader.refresh().expect("refresh");
    let ev = sub
        .next_timeout(std::time::Duration::from_secs(5))
        .expect("next")
        .expect("the event after the start");
    assert_eq!(ev.position(), 1_000);
}

#[test]
fn backups_copy_the_type_indexes_and_verify_checks_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, 1_500);
    store.sync().expect("sync");
    drop(store);
    let tix = |d: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut found: Vec<_> = std::fs::read_dir(d)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "tix"))
            .collect();
        found.sort();
        found
    };
    let store = Store::open_read_only(dir.path()).expect("read-only");
    store.backup(copy.path().join("b")).expect("backup");
    let names = |v: Vec<std::path::PathBuf>| -> Vec<std::ffi::OsString> {
        v.iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect()
    };
    let source = tix(dir.path());
    assert!(source.len() > 2);
    assert_eq!(names(tix(&copy.path().join("b"))), names(source.clone()));
    assert!(annals::verify(dir.path()).expect("verify").is_sound());
    // A flipped byte in a list is found and named.
    let len = std::fs::metadata(&source[1]).expect("stat").len() as usize;
    common::overwrite(&source[1], len - 2, &[0x5A]);
    let report = annals::verify(dir.path()).expect("verify");
    assert!(
        report.damages.iter().any(|d| d.file == source[1]),
        "{report:?}"
    );
    check_indexed_reads(&store);
}
