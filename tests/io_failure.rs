//! A failed `write` (an error, a short write, a full disk) or `fdatasync` fails every append of
//! its batch, poisons the store until it is reopened, and after reopening the store holds
//! exactly the acknowledged appends.

use std::sync::Barrier;

use annals::{Error, EventData, ExpectedVersion, FaultPlan, Options, Store};

const THREADS: usize = 16;

/// Appends from many threads until the injected failure; returns the acknowledged payloads.
fn run_until_failure(plan: FaultPlan) -> (tempfile::TempDir, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), Options::default().fault_plan(plan)).unwrap();
    let barrier = Barrier::new(THREADS);
    let outcomes: Vec<Vec<(Vec<u8>, annals::Result<annals::AppendResult>)>> =
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (store, barrier) = (&store, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (0..40)
                            .map(|n| {
                                let payload = format!("{t}/{n}").into_bytes();
                                let event = EventData::new("E", payload.clone());
                                (payload, store.append("s", ExpectedVersion::Any, [event]))
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
    let mut acknowledged = Vec::new();
    let (mut io_errors, mut poisoned) = (0, 0);
    for (payload, result) in outcomes.into_iter().flatten() {
        match result {
            Ok(_) => acknowledged.push(payload),
            Err(Error::Io { source, .. }) => {
                let message = source.to_string();
                assert!(
                    message.contains("injected") || message.contains("space"),
                    "{message}"
                );
                io_errors += 1;
            }
            Err(Error::Poisoned { cause }) => {
                assert!(
                    cause.contains("injected") || cause.contains("space"),
                    "{cause}"
                );
                poisoned += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert!(
        io_errors >= 1,
        "the failing batch reported its error to its callers"
    );
    assert!(poisoned >= 1, "later appends are refused");
    // Refused until reopened, sync included.
    let refused = store.append("s", ExpectedVersion::Any, [EventData::new("E", vec![])]);
    assert!(matches!(refused, Err(Error::Poisoned { .. })));
    assert!(matches!(store.sync(), Err(Error::Poisoned { .. })));
    // Readers still see exactly what was acknowledged.
    let seen: Vec<Vec<u8>> = store
        .read_all(0)
        .map(|e| e.unwrap().payload().to_vec())
        .collect();
    assert_eq!(sorted(seen), sorted(acknowledged.clone()));
    drop(store);
    (dir, acknowledged)
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    v.sort();
    v
}

fn check_reopened(dir: &tempfile::TempDir, acknowledged: Vec<Vec<u8>>) {
    let store = Store::open(dir.path()).unwrap();
    let stored: Vec<Vec<u8>> = store
        .read_all(0)
        .map(|e| e.unwrap().payload().to_vec())
        .collect();
    assert_eq!(
        sorted(stored),
        sorted(acknowledged),
        "exactly the acknowledged appends"
    );
    // And the reopened store accepts writes again.
    store
        .append("s", ExpectedVersion::Any, [EventData::new("E", vec![1])])
        .unwrap();
}

#[test]
fn a_failed_fdatasync_fails_its_batch_and_poisons_the_store() {
    let (dir, acknowledged) = run_until_failure(FaultPlan {
        fail_sync: Some(20),
        ..FaultPlan::default()
    });
    assert!(!acknowledged.is_empty());
    check_reopened(&dir, acknowledged);
}

#[test]
fn a_failed_write_fails_its_batch_and_poisons_the_store() {
    let (dir, acknowledged) = run_until_failure(FaultPlan {
        fail_write: Some(15),
        ..FaultPlan::default()
    });
    check_reopened(&dir, acknowledged);
}

#[test]
fn a_short_write_fails_its_batch_and_poisons_the_store() {
    let (dir, acknowledged) = run_until_failure(FaultPlan {
        short_write: Some(12),
        ..FaultPlan::default()
    });
    check_reopened(&dir, acknowledged);
}

#[test]
fn a_full_disk_fails_its_batch_and_poisons_the_store() {
    let (dir, acknowledged) = run_until_failure(FaultPlan {
        disk_full: Some(18),
        ..FaultPlan::default()
    });
    check_reopened(&dir, acknowledged);
}

#[test]
fn a_panic_in_the_writer_fails_its_batch_and_later_appends_do_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let plan = FaultPlan {
        panic_on_write: Some(3),
        ..FaultPlan::default()
    };
    let store = Store::open_with(dir.path(), Options::default().fault_plan(plan)).unwrap();
    let append = || store.append("s", ExpectedVersion::Any, [EventData::new("E", vec![7])]);
    append().unwrap();
    append().unwrap();
    assert!(matches!(append(), Err(Error::Poisoned { cause }) if cause.contains("panicked")));
    assert!(matches!(append(), Err(Error::Poisoned { .. })));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.read_all(0).count(), 2);
}

/// Many trials of a failing write while a batch rolls to a new segment: small segments, big
/// events, many threads, the failure at a different write each time. Each time the reopened
/// store holds exactly the acknowledged appends: no frame of a failed batch survives, even one
/// written before the roll.
fn failures_around_rolls(plan: impl Fn(u64) -> FaultPlan) {
    for trial in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let options = Options::default()
            .segment_size(annals::MIN_SEGMENT_SIZE)
            .fault_plan(plan(trial));
        let store = Store::open_with(dir.path(), options).unwrap();
        let acknowledged: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let store = &store;
                    s.spawn(move || {
                        let mut acked = Vec::new();
                        for n in 0..25 {
                            let mut payload = format!("{trial}/{t}/{n}/").into_bytes();
                            payload.resize(1500 + 97 * n, t as u8);
                            let event = EventData::new("E", payload.clone());
                            match store.append("s", ExpectedVersion::Any, [event]) {
                                Ok(_) => acked.push(payload),
                                Err(_) => break,
                            }
                        }
                        acked
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        drop(store);
        check_reopened(&dir, acknowledged);
    }
}

#[test]
fn a_short_write_after_a_segment_roll_leaves_nothing_of_its_batch() {
    failures_around_rolls(|trial| FaultPlan {
        short_write: Some(3 + trial),
        ..FaultPlan::default()
    });
}

#[test]
fn a_full_disk_after_a_segment_roll_leaves_nothing_of_its_batch() {
    failures_around_rolls(|trial| FaultPlan {
        disk_full: Some(3 + trial),
        ..FaultPlan::default()
    });
}

#[test]
fn a_panic_after_a_segment_roll_keeps_the_results_already_published() {
    failures_around_rolls(|trial| FaultPlan {
        panic_on_write: Some(3 + trial),
        ..FaultPlan::default()
    });
}

/// The same event appended by many threads at once: the first copy in the batch is written,
/// the others are deduplicated against it. If that write fails, none of them may succeed.
#[test]
fn appends_deduplicated_against_a_failed_write_fail_with_it() {
    for trial in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let plan = FaultPlan {
            fail_write: Some(1),
            ..FaultPlan::default()
        };
        let options = Options::default()
            .segment_size(annals::MIN_SEGMENT_SIZE)
            .fault_plan(plan);
        let store = Store::open_with(dir.path(), options).unwrap();
        let barrier = Barrier::new(THREADS);
        let results: Vec<annals::Result<annals::AppendResult>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (store, barrier) = (&store, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let event = EventData::new("E", b"once".to_vec()).id(42);
                        store.append("s", ExpectedVersion::Any, [event])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results {
            assert!(
                r.is_err(),
                "trial {trial}: acknowledged against a failed write: {r:?}"
            );
        }
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_position(), 0, "trial {trial}");
    }
}
