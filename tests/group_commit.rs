//! Group commit: concurrent appends share writes, and the checks of each append (expected
//! version, idempotency, streams that hash alike) hold against the appends before it in the
//! same batch.

mod common;

use std::collections::HashSet;
use std::sync::Barrier;

use annals::{EventData, ExpectedVersion, Options, Store};

const THREADS: usize = 32;

#[test]
fn concurrent_appends_share_writes_and_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), common::small_segments()).unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (store, barrier) = (&store, &barrier);
            s.spawn(move || {
                barrier.wait();
                let stream = format!("own-{t}");
                for v in 0..50u64 {
                    let expected = if v == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(v - 1)
                    };
                    let r = store
                        .append(&stream, expected, [EventData::new("E", vec![t as u8; 100])])
                        .unwrap();
                    assert_eq!(r.first_version, v);
                }
            });
        }
    });
    assert_eq!(store.next_position(), (THREADS * 50) as u64);
    drop(store);
    let mut appends = 0;
    let mut writes = HashSet::new();
    for file in common::segment_files(dir.path()) {
        for frame in common::frames(&file) {
            appends += 1;
            // Under Fsync the frames of one write share its durable position.
            writes.insert(frame.durable);
        }
    }
    assert_eq!(appends, THREADS * 50, "one frame per append");
    assert!(
        writes.len() < appends,
        "{} writes for {appends} appends: no batching",
        writes.len()
    );
    eprintln!("{appends} appends in {} writes", writes.len());
}

#[test]
fn the_same_event_from_many_threads_is_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for round in 0..20u128 {
        let barrier = Barrier::new(THREADS);
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    let (store, barrier) = (&store, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let events = [
                            EventData::new("E", vec![1]).id(round * 2),
                            EventData::new("E", vec![2]).id(round * 2 + 1),
                        ];
                        store.append("dup", ExpectedVersion::Any, events).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let written: Vec<_> = results.iter().filter(|r| !r.deduplicated).collect();
        assert_eq!(written.len(), 1, "round {round}");
        for r in &results {
            assert_eq!(
                (r.first_position, r.last_position),
                (written[0].first_position, written[0].last_position)
            );
        }
    }
    assert_eq!(store.next_position(), 40);
    assert_eq!(store.stream_version("dup"), Some(39));
}

/// Streams `s-0` and `s-1` hash alike, as do `s-2` and `s-3`, and so on: pairs of new streams
/// that collide keep arriving in the same batches.
fn collide(name: &str) -> u64 {
    name.trim_start_matches("s-").parse::<u64>().unwrap_or(0) / 2
}

#[test]
fn new_streams_that_hash_alike_in_one_batch_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), Options::default().stream_hasher(collide)).unwrap();
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (store, barrier) = (&store, &barrier);
            s.spawn(move || {
                barrier.wait();
                for v in 0..10u64 {
                    let payload = format!("{t}/{v}").into_bytes();
                    store
                        .append(
                            &format!("s-{t}"),
                            ExpectedVersion::Any,
                            [EventData::new("E", payload)],
                        )
                        .unwrap();
                }
            });
        }
    });
    check_streams(&store);
    drop(store);
    let store = Store::open_with(dir.path(), Options::default().stream_hasher(collide)).unwrap();
    check_streams(&store);
}

fn check_streams(store: &Store) {
    for t in 0..THREADS {
        let payloads: Vec<Vec<u8>> = store
            .read_stream(&format!("s-{t}"), 0)
            .map(|e| e.unwrap().payload().to_vec())
            .collect();
        let expected: Vec<Vec<u8>> = (0..10).map(|v| format!("{t}/{v}").into_bytes()).collect();
        assert_eq!(payloads, expected, "stream s-{t}");
    }
}
