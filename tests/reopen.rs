//! Many events across many segments come back byte for byte after close and reopen, positions
//! stay dense, and appends continue at the right position.

mod common;

use annals::{Durability, EventData, ExpectedVersion, Store};
use common::*;

const STREAMS: [&str; 3] = ["order-1", "order-2", "customer-7"];

/// Appends `appends` batches of 1..=4 events round-robin over the streams; returns, per
/// position, the stream and the event number `n` used to build it.
fn fill(store: &Store, appends: u64, start_n: u64) -> Vec<(&'static str, u64)> {
    let mut written = Vec::new();
    let mut n = start_n;
    for a in 0..appends {
        let stream = STREAMS[(a % 3) as usize];
        let batch = 1 + a % 4;
        let events: Vec<EventData> = (n..n + batch).map(|i| event(stream, i)).collect();
        let r = store
            .append(stream, ExpectedVersion::Any, events)
            .expect("append");
        assert_eq!(r.last_position - r.first_position + 1, batch);
        assert!(!r.deduplicated);
        for i in n..n + batch {
            written.push((stream, i));
        }
        n += batch;
    }
    written
}

fn check_all(store: &Store, written: &[(&str, u64)]) {
    let events = read_everything(store);
    assert_eq!(events.len(), written.len());
    let mut versions = std::collections::HashMap::new();
    for (p, (ev, (stream, n))) in events.iter().zip(written).enumerate() {
        let v = versions.entry(*stream).or_insert(0u64);
        assert_event(ev, stream, *n, p as u64, *v);
        *v += 1;
    }
    for (stream, v) in versions {
        assert_eq!(store.stream_version(stream), Some(v - 1));
    }
    assert_eq!(store.next_position(), written.len() as u64);
}

#[test]
fn many_segments_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let mut written = fill(&store, 400, 0);
    check_all(&store, &written);
    store.close().unwrap();

    let segments = segment_files(dir.path());
    assert!(segments.len() >= 10, "only {} segments", segments.len());

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(store.open_report().segments, segments.len());
    assert_eq!(store.open_report().events, written.len() as u64);
    assert_eq!(store.open_report().cut, None);
    check_all(&store, &written);

    // Appends continue densely after the reopen, and survive another one.
    let next = store.next_position();
    let more = fill(&store, 50, 10_000);
    assert_eq!(read_everything(&store)[next as usize].position(), next);
    written.extend(more);
    drop(store);
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    check_all(&store, &written);
}

#[test]
fn read_all_from_the_middle_starts_at_that_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let written = fill(&store, 300, 0);
    for from in [0, 1, 2, 77, 300, written.len() as u64 - 1] {
        let first = store.read_all(from).next().unwrap().unwrap();
        assert_eq!(first.position(), from);
        assert_eq!(store.read_all(from).count(), written.len() - from as usize);
    }
    assert!(store.read_all(written.len() as u64).next().is_none());
    assert!(store.read_all(u64::MAX).next().is_none());
}

#[test]
fn an_append_larger_than_a_segment_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let big = vec![0xAB; 3 * annals::MIN_SEGMENT_SIZE as usize];
    // First into the empty first segment, then after a small event, then again.
    store
        .append(
            "big",
            ExpectedVersion::NoStream,
            [EventData::new("Big", big.clone())],
        )
        .unwrap();
    store
        .append(
            "small",
            ExpectedVersion::Any,
            [EventData::new("Small", vec![1])],
        )
        .unwrap();
    store
        .append(
            "big",
            ExpectedVersion::Exact(0),
            [EventData::new("Big", big.clone())],
        )
        .unwrap();
    store
        .append(
            "small",
            ExpectedVersion::Any,
            [EventData::new("Small", vec![2])],
        )
        .unwrap();
    store.close().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let events = read_everything(&store);
    let payloads: Vec<usize> = events.iter().map(|e| e.payload().len()).collect();
    assert_eq!(payloads, [big.len(), 1, big.len(), 1]);
    assert!(events[2].payload() == big.as_slice());
    assert_eq!(store.stream_version("big"), Some(1));
}

#[test]
fn buffered_durability_keeps_everything_after_sync_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments().durability(Durability::Buffered);
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    let written = fill(&store, 200, 0);
    check_all(&store, &written);
    store.sync().unwrap();
    let clone = store.clone();
    drop(store);
    // The clone keeps the store open.
    assert!(matches!(
        Store::open(dir.path()),
        Err(annals::Error::Locked { .. })
    ));
    clone.close().unwrap();
    let store = Store::open_with(dir.path(), options).unwrap();
    check_all(&store, &written);
}
