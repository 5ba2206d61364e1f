//! Compaction: what retention rules and soft deletes hide leaves the sealed segments, the
//! files shrink, every other event keeps its position, version and bytes, the removed
//! positions are holes every read skips in order, and all of it survives reopening, with
//! and without the index snapshot and side files.

mod common;

use std::collections::HashMap;
use std::path::Path;

use annals::{verify, EventData, ExpectedVersion, Retention, Store};
use common::{event, read_everything, small_segments};

/// Appends `n` events round-robin over `streams`; returns each stream's events' positions.
fn fill(store: &Store, streams: &[&str], n: u64) {
    for i in 0..n {
        let stream = streams[(i % streams.len() as u64) as usize];
        store
            .append(stream, ExpectedVersion::Any, [event(stream, i)])
            .expect("append");
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").metadata().expect("metadata"))
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn stream_events(store: &Store, stream: &str) -> Vec<annals::RecordedEvent> {
    store
        .read_stream(stream, 0)
        .collect::<annals::Result<_>>()
        .expect("read_stream")
}

#[test]
fn compaction_removes_what_retention_hides_and_keeps_everything_else_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = ["sensor-1", "sensor-2", "order-1", "order-2", "gone-1"];
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, &streams, 3_000);
    store
        .set_retention("sensor-1", Retention::default().max_count(7))
        .expect("retention");
    store
        .set_retention("sensor-2", Retention::default().truncate_before(400))
        .expect("retention");
    store
        .delete_stream("gone-1", ExpectedVersion::Any)
        .expect("delete");
    let before_all = read_everything(&store);
    let before_streams: HashMap<&str, _> = streams
        .iter()
        .map(|s| (*s, stream_events(&store, s)))
        .collect();
    let versions: Vec<_> = streams.iter().map(|s| store.stream_version(s)).collect();
    let size_before = dir_bytes(dir.path());

    let report = store.compact().expect("compact");
    assert!(report.segments_rewritten > 0, "{report:?}");
    assert!(report.bytes_reclaimed() > 0, "{report:?}");

    // What the rules hid is gone from read_all, except each stream's last event; the rest
    // is identical, in order.
    let sealed_end = {
        let all = read_everything(&store);
        assert!(all.len() < before_all.len());
        all
    };
    let kept: Vec<_> = before_all
        .iter()
        .filter(|ev| sealed_end.iter().any(|k| k.position() == ev.position()))
        .cloned()
        .collect();
    assert_eq!(kept, sealed_end, "kept events are the originals, in order");
    let removed: Vec<_> = before_all
        .iter()
        .filter(|ev| !sealed_end.iter().any(|k| k.position() == ev.position()))
        .collect();
    assert_eq!(removed.len() as u64, report.events_removed);
    for ev in &removed {
        let visible = before_streams[ev.stream()]
            .iter()
            .any(|v| v.position() == ev.position());
        assert!(!visible, "a visible event was removed: {ev:?}");
        assert!(
            ["sensor-1", "sensor-2", "gone-1"].contains(&ev.stream()),
            "{ev:?}"
        );
    }
    // Stream reads and versions are unchanged; the soft-deleted stream's last event stays
    // (hidden) so its versions continue.
    for s in streams {
        assert_eq!(stream_events(&store, s), before_streams[s], "{s}");
    }
    let after: Vec<_> = streams.iter().map(|s| store.stream_version(s)).collect();
    assert_eq!(after, versions);
    assert!(dir_bytes(dir.path()) < size_before);

    // Holes: reading from inside one starts at the next event left, in order.
    let first_removed = removed[0].position();
    let from_hole: Vec<u64> = store
        .read_all(first_removed)
        .map(|e| e.expect("read").position())
        .collect();
    let expected: Vec<u64> = sealed_end
        .iter()
        .map(|e| e.position())
        .filter(|&p| p >= first_removed)
        .collect();
    assert_eq!(from_hole, expected);
    assert_eq!(store.next_position(), 3_000);

    // Appends go on; a second compaction of compacted segments removes more.
    store
        .append(
            "sensor-1",
            ExpectedVersion::Any,
            [EventData::new("T", vec![1])],
        )
        .expect("append after compaction");
    drop(store);
    let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
    let reopened = read_everything(&store);
    assert_eq!(&reopened[..sealed_end.len()], &sealed_end[..]);
    assert_eq!(
        store.stream_version("sensor-1"),
        Some(versions[0].unwrap() + 1)
    );
    assert_eq!(stream_events(&store, "sensor-1").len(), 7);
    let again = store.compact().expect("compact again");
    assert!(again.events_removed >= 1, "{again:?}");
    assert_eq!(stream_events(&store, "sensor-1").len(), 7);
    drop(store);
    let report = verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{report:?}");
}

#[test]
fn a_compacted_store_opens_without_its_index_snapshot_and_side_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let streams = ["a-1", "b-1", "c-1"];
    {
        let store = Store::open_with(dir.path(), small_segments()).expect("open");
        fill(&store, &streams, 1_500);
        store
            .set_retention("a-1", Retention::default().max_count(3))
            .expect("retention");
        store.compact().expect("compact");
    }
    let (all, a, b) = {
        let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
        (
            read_everything(&store),
            stream_events(&store, "a-1"),
            stream_events(&store, "b-1"),
        )
    };
    for entry in std::fs::read_dir(dir.path()).expect("read_dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "INDEX" || name.ends_with(".idx") {
            std::fs::remove_file(&path).expect("remove");
        }
    }
    let store = Store::open_with(dir.path(), small_segments()).expect("open without indexes");
    assert!(!store.open_report().rebuilt_indexes.is_empty());
    assert_eq!(read_everything(&store), all);
    assert_eq!(stream_events(&store, "a-1"), a);
    assert_eq!(stream_events(&store, "b-1"), b);
    assert_eq!(a.len(), 3);
    store
        .append(
            "a-1",
            ExpectedVersion::Exact(499),
            [EventData::new("T", vec![])],
        )
        .expect("versions continue after a fallback open");
}

#[test]
fn a_subscription_skips_the_holes_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, &["x-1", "y-1"], 1_000);
    store
        .delete_stream("x-1", ExpectedVersion::Any)
        .expect("delete");
    store.compact().expect("compact");
    let expected: Vec<u64> = read_everything(&store)
        .iter()
        .map(|e| e.position())
        .collect();
    assert!(expected.len() < 1_000);
    let mut sub = store.subscribe_all(0);
    let mut got = Vec::new();
    while let Some(ev) = sub
        .next_timeout(std::time::Duration::from_millis(50))
        .expect("subscription")
    {
        got.push(ev.position());
    }
    assert_eq!(got, expected);
}

#[test]
fn a_read_begun_before_a_rewrite_reads_the_old_files_to_the_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, &["p-1", "q-1"], 1_000);
    store
        .delete_stream("p-1", ExpectedVersion::Any)
        .expect("delete");
    let before = read_everything(&store);
    let mut early = store.read_all(0);
    let first = early.next().expect("one").expect("read");
    let report = store.compact().expect("compact");
    assert!(report.events_removed > 0);
    // The early read holds the old segments (mapped, their files replaced): it sees them all.
    let rest: Vec<_> = early.map(|e| e.expect("read the old files")).collect();
    assert_eq!(
        std::iter::once(first).chain(rest).collect::<Vec<_>>(),
        before
    );
    assert!(read_everything(&store).len() < before.len());
}

#[test]
fn a_compacted_store_reads_the_same_read_only_and_from_a_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, &["r-1", "s-1", "t-1"], 1_500);
    store
        .set_retention("r-1", Retention::default().max_count(2))
        .expect("retention");
    store.erase_stream("t-1").expect("erase");
    store.compact().expect("compact");
    let all = read_everything(&store);
    let reader = Store::open_read_only(dir.path()).expect("read-only");
    assert_eq!(read_everything(&reader), all);
    assert_eq!(stream_events(&reader, "r-1"), stream_events(&store, "r-1"));
    store
        .backup(copy.path().join("b"))
        .expect("backup of a compacted store");
    drop(store);
    let restored = Store::open_with(copy.path().join("b"), small_segments()).expect("open copy");
    assert_eq!(read_everything(&restored), all);
    assert_eq!(stream_events(&restored, "r-1").len(), 2);
    drop(restored);
    assert!(verify(copy.path().join("b")).expect("verify").is_sound());
}

#[test]
fn background_compaction_removes_what_retention_hides_and_stops_with_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options =
        small_segments().background_compaction(std::time::Duration::from_millis(20), 50 << 20);
    let store = Store::open_with(dir.path(), options.clone()).expect("open");
    fill(&store, &["u-1", "v-1"], 2_000);
    store
        .set_retention("u-1", Retention::default().max_count(1))
        .expect("retention");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let removed = loop {
        if let Some(Ok(report)) = store.last_background_compaction() {
            if report.events_removed > 0 {
                break report.events_removed;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no background compaction ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(removed > 900, "{removed}");
    assert_eq!(stream_events(&store, "u-1").len(), 1);
    // Closing stops the thread (even mid-run) and releases the directory.
    fill(&store, &["u-1"], 500);
    drop(store);
    let store = Store::open_with(dir.path(), options).expect("reopen at once");
    assert_eq!(store.stream_version("u-1"), Some(1_499));
    assert!(Store::open_with(dir.path(), small_segments()).is_err());
}

#[test]
fn stream_reads_and_subscriptions_of_a_compacted_stream_start_at_what_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&store, &["w-1", "z-1"], 2_000);
    store
        .set_retention("w-1", Retention::default().max_count(40))
        .expect("retention");
    store.compact().expect("compact");
    // Rules loosened after compaction cannot bring back what it removed.
    store
        .set_retention("w-1", Retention::default().max_count(10_000))
        .expect("retention");
    let forward: Vec<u64> = store
        .read_stream("w-1", 0)
        .map(|e| e.expect("read_stream").version())
        .collect();
    assert!(
        !forward.is_empty() && forward.len() < 1_000,
        "{}",
        forward.len()
    );
    assert_eq!(*forward.last().unwrap(), 999);
    let backward: Vec<u64> = store
        .read_stream_backward("w-1", None)
        .map(|e| e.expect("read_stream_backward").version())
        .collect();
    assert_eq!(backward, forward.iter().rev().copied().collect::<Vec<_>>());
    let mut sub = store.subscribe_stream("w-1", 0);
    let mut got = Vec::new();
    while let Some(ev) = sub
        .next_timeout(std::time::Duration::from_millis(50))
        .expect("subscribe_stream")
    {
        got.push(ev.version());
    }
    assert_eq!(got, forward);
}

#[test]
fn compacting_twice_keeps_the_index_snapshot_usable() {
    let dir = tempfile::tempdir().expect("tempdir");
    for round in 0..3u64 {
        let store = Store::open_with(dir.path(), small_segments()).expect("open");
        if round > 0 {
            let report = store.open_report();
            assert_eq!(report.snapshot_ignored, None, "round {round}");
            assert!(report.snapshot_position.is_some(), "round {round}");
        }
        fill(&store, &["k-1", "m-1"], 1_000);
        store
            .set_retention("k-1", Retention::default().max_count(3 + round))
            .expect("retention");
        assert!(store.compact().expect("compact").events_removed > 0);
    }
}
