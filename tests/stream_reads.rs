//! Reading one stream forward, backward and from the middle, across many segments and after
//! reopen; every event is the stream's own, in version order.

mod common;

use annals::{EventData, ExpectedVersion, Store};
use common::*;

const STREAMS: u64 = 5;

/// Appends events `0..events` interleaved over the streams, in appends of 1 to 3 events;
/// returns the event numbers of each stream.
fn fill(store: &Store, events: u64) -> Vec<Vec<u64>> {
    let mut per_stream = vec![Vec::new(); STREAMS as usize];
    let mut n = 0;
    let mut a = 0;
    while n < events {
        let k = a % STREAMS;
        let batch = 1 + a % 3;
        let ns: Vec<u64> = (0..batch).map(|i| n + i).collect();
        let name = format!("stream-{k}");
        store
            .append(
                &name,
                ExpectedVersion::Any,
                ns.iter().map(|&i| event(&name, i)),
            )
            .unwrap();
        per_stream[k as usize].extend(&ns);
        n += batch;
        a += 1;
    }
    per_stream
}

fn check_forward(store: &Store, k: usize, ns: &[u64], from: u64) {
    let name = format!("stream-{k}");
    let events: Vec<_> = store
        .read_stream(&name, from)
        .collect::<annals::Result<_>>()
        .unwrap();
    assert_eq!(
        events.len(),
        ns.len().saturating_sub(from as usize),
        "{name} from {from}"
    );
    for (ev, v) in events.iter().zip(from..) {
        assert_eq!(ev.version(), v);
        assert_eq!(ev.stream(), name);
        assert_eq!(ev.payload(), payload(&name, ns[v as usize]).as_slice());
    }
}

fn check_backward(store: &Store, k: usize, ns: &[u64], from: Option<u64>) {
    let name = format!("stream-{k}");
    let versions: Vec<u64> = store
        .read_stream_backward(&name, from)
        .map(|ev| {
            let ev = ev.unwrap();
            assert_eq!(
                ev.payload(),
                payload(&name, ns[ev.version() as usize]).as_slice()
            );
            ev.version()
        })
        .collect();
    let top = from.map_or(ns.len() as u64 - 1, |f| f.min(ns.len() as u64 - 1));
    assert_eq!(
        versions,
        (0..=top).rev().collect::<Vec<_>>(),
        "{name} back from {from:?}"
    );
}

fn check_all(store: &Store, per_stream: &[Vec<u64>]) {
    for (k, ns) in per_stream.iter().enumerate() {
        let len = ns.len() as u64;
        for from in [0, 1, 31, 32, 33, 64, len / 2, len - 1, len, len + 10] {
            check_forward(store, k, ns, from);
        }
        for from in [
            None,
            Some(0),
            Some(31),
            Some(32),
            Some(len / 2),
            Some(len - 1),
            Some(len + 5),
        ] {
            check_backward(store, k, ns, from);
        }
        assert_eq!(store.stream_version(&format!("stream-{k}")), Some(len - 1));
    }
}

#[test]
fn stream_reads_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let per_stream = fill(&store, 1500);
    assert!(segment_files(dir.path()).len() >= 5);
    check_all(&store, &per_stream);
    drop(store);
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert!(
        store.open_report().rebuilt_indexes.is_empty(),
        "{:?}",
        store.open_report()
    );
    check_all(&store, &per_stream);
}

#[test]
fn a_missing_stream_reads_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert!(store.read_stream("nope", 0).next().is_none());
    assert!(store.read_stream_backward("nope", None).next().is_none());
    assert_eq!(store.stream_version("nope"), None);
    store
        .append("yes", ExpectedVersion::Any, [EventData::new("E", vec![])])
        .unwrap();
    assert!(store.read_stream("nope", 0).next().is_none());
    assert!(store.read_stream("yes", 1).next().is_none());
}

#[test]
fn a_read_sees_the_stream_as_it_was_when_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append(
            "s",
            ExpectedVersion::Any,
            (0..40).map(|i| EventData::new("E", vec![i])),
        )
        .unwrap();
    let mut reader = store.read_stream("s", 0);
    let first = reader.next().unwrap().unwrap();
    store
        .append("s", ExpectedVersion::Any, [EventData::new("Late", vec![])])
        .unwrap();
    assert_eq!(first.version(), 0);
    assert_eq!(reader.count(), 39);
    assert_eq!(store.read_stream("s", 0).count(), 41);
}

fn collide(_: &str) -> u64 {
    7
}

#[test]
fn streams_whose_names_hash_alike_never_mix() {
    // Every stream name hashes to the same value: the index must tell them apart by name.
    let dir = tempfile::tempdir().unwrap();
    let options = small_segments().stream_hasher(collide);
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    let per_stream = fill(&store, 600);
    check_all(&store, &per_stream);
    // Expected versions and ids are per stream too.
    let v1 = store.stream_version("stream-1").unwrap();
    let v2 = store.stream_version("stream-2").unwrap();
    assert!(store
        .append(
            "stream-2",
            ExpectedVersion::Exact(v2 + 1),
            [event("stream-2", 0)]
        )
        .is_err());
    store
        .append(
            "stream-2",
            ExpectedVersion::Exact(v2),
            [event("stream-2", 0)],
        )
        .unwrap();
    assert_eq!(store.stream_version("stream-1"), Some(v1));
    assert_eq!(store.stream_version("stream-2"), Some(v2 + 1));
    let n = per_stream[3][0];
    let dup = store
        .append("stream-3", ExpectedVersion::Any, [event("stream-3", n)])
        .unwrap();
    assert!(dup.deduplicated);
    let fresh = store
        .append("stream-4", ExpectedVersion::Any, [event("stream-4", n)])
        .unwrap();
    assert!(!fresh.deduplicated);
    drop(store);
    let mut per_stream = per_stream;
    per_stream[2].push(0);
    per_stream[4].push(n);
    let store = Store::open_with(dir.path(), options).unwrap();
    check_all(&store, &per_stream);
}
