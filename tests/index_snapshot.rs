//! The index snapshot (`INDEX`): written at a clean close and in the background after rolls,
//! used by the next open so that it indexes only the events after it, and never trusted
//! blindly — a damaged, stale or foreign snapshot is ignored or reported, never a wrong read.

mod common;

use std::path::Path;
use std::time::Duration;

use annals::{Durability, Error, ExpectedVersion, Options, Store};
use common::*;

const STREAMS: u64 = 23;

/// Appends `count` events, event `n` to stream `s-{n % STREAMS}`, from `n = from` on; returns
/// the streams and `n`s in position order.
fn fill(store: &Store, from: u64, count: u64) -> Vec<(String, u64)> {
    (from..from + count)
        .map(|n| {
            let stream = format!("s-{}", n % STREAMS);
            store
                .append(&stream, ExpectedVersion::Any, [event(&stream, n)])
                .unwrap();
            (stream, n)
        })
        .collect()
}

/// Checks every event, every stream both ways, and that ids are still remembered.
fn check(store: &Store, written: &[(String, u64)]) {
    try_check(store, written).unwrap();
}

/// [`check`], returning the first error met instead of panicking on it.
fn try_check(store: &Store, written: &[(String, u64)]) -> annals::Result<()> {
    let all = store.read_all(0).collect::<annals::Result<Vec<_>>>()?;
    assert_eq!(all.len(), written.len());
    let mut versions = std::collections::HashMap::new();
    for (position, (ev, (stream, n))) in (0u64..).zip(all.iter().zip(written)) {
        let version = versions.entry(stream.clone()).or_insert(0u64);
        assert_event(ev, stream, *n, position, *version);
        *version += 1;
    }
    for k in 0..STREAMS {
        let stream = format!("s-{k}");
        let forward: Vec<_> = store
            .read_stream(&stream, 0)
            .collect::<annals::Result<_>>()?;
        let mine: Vec<_> = all.iter().filter(|e| e.stream() == stream).collect();
        assert_eq!(forward.len(), mine.len(), "{stream}");
        for (a, b) in forward.iter().zip(&mine) {
            assert_eq!(a.position(), b.position());
        }
        for from in [0, 31, 32, 33, 70] {
            let backward: Vec<u64> = store
                .read_stream_backward(&stream, Some(from))
                .map(|e| e.map(|e| e.version()))
                .collect::<annals::Result<_>>()?;
            let top = from.min(mine.len() as u64 - 1);
            assert_eq!(backward, (0..=top).rev().collect::<Vec<_>>(), "{stream}");
        }
        let version = store.try_stream_version(&stream)?;
        assert_eq!(version, Some(mine.len() as u64 - 1));
    }
    // The newest event's id is remembered: appending it again writes nothing.
    let (stream, n) = written.last().unwrap();
    let again = store.append(stream, ExpectedVersion::Any, [event(stream, *n)])?;
    assert!(again.deduplicated);
    Ok(())
}

#[test]
fn a_clean_close_leaves_a_snapshot_that_the_next_open_uses() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let written = fill(&store, 0, 1500);
    store.close().unwrap();
    assert!(dir.path().join("INDEX").exists());

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let report = store.open_report();
    assert_eq!(report.snapshot_position, Some(1500), "{report:?}");
    assert_eq!(report.snapshot_ignored, None);
    assert_eq!(report.streams, STREAMS as usize);
    assert_eq!(store.stats().index_bytes, 0, "nothing indexed in memory");
    check(&store, &written);
    // Appends continue the streams over the snapshot.
    let mut written = written;
    written.extend(fill(&store, 1500, 100));
    check(&store, &written);
}

#[test]
fn a_crash_after_the_snapshot_indexes_only_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let mut written = fill(&store, 0, 700);
    store.close().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    written.extend(fill(&store, 700, 900));
    let copy = tempfile::tempdir().unwrap();
    crash_copy(dir.path(), copy.path());
    drop(store);

    let store = Store::open_with(copy.path(), small_segments()).unwrap();
    let report = store.open_report();
    let at = report.snapshot_position.expect("a snapshot is used");
    assert!((700..=1600).contains(&at), "{report:?}");
    assert!(
        store.stats().index_bytes > 0,
        "the events after it are indexed"
    );
    check(&store, &written);
}

#[test]
fn a_snapshot_ending_inside_a_sealed_segment_is_continued_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let mut written = fill(&store, 0, 250);
    store.close().unwrap();
    // The clean close's snapshot ends inside the tail; later appends seal that segment.
    let old = std::fs::read(dir.path().join("INDEX")).unwrap();
    let tail_then = segment_files(dir.path()).len();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    written.extend(fill(&store, 250, 600));
    store.close().unwrap();
    assert!(segment_files(dir.path()).len() > tail_then + 1);
    std::fs::write(dir.path().join("INDEX"), old).unwrap();

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(store.open_report().snapshot_position, Some(250));
    check(&store, &written);
}

#[test]
fn names_that_hash_alike_survive_snapshots() {
    fn collide(_: &str) -> u64 {
        7
    }
    let options = small_segments().stream_hasher(collide);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    let mut written = fill(&store, 0, 400);
    store.close().unwrap();
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    assert_eq!(store.open_report().snapshot_position, Some(400));
    check(&store, &written);
    written.extend(fill(&store, 400, 400));
    drop(store);
    let store = Store::open_with(dir.path(), options).unwrap();
    check(&store, &written);
    drop(store);
    // A build hashing names differently does not use the snapshot.
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let report = store.open_report();
    assert_eq!(report.snapshot_position, None);
    assert!(report.snapshot_ignored.is_some(), "{report:?}");
    check(&store, &written);
}

/// Everything reads back right, or the first error is `Corrupt` naming the snapshot.
fn right_or_blaming(store: &Store, written: &[(String, u64)], snapshot: &Path) {
    match try_check(store, written) {
        Ok(()) => {}
        Err(Error::Corrupt { file, .. }) => assert_eq!(file, snapshot),
        Err(other) => panic!("expected Corrupt naming the snapshot, got {other}"),
    }
}

#[test]
fn a_damaged_snapshot_is_ignored_or_reported_never_believed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let written = fill(&store, 0, 600);
    store.close().unwrap();
    let path = dir.path().join("INDEX");
    let original = std::fs::read(&path).unwrap();
    let mut rng = Rng::from_clock("a_damaged_snapshot_is_ignored_or_reported_never_believed");
    let mut offsets: Vec<usize> = (0..60)
        .map(|_| rng.below(original.len() as u64) as usize)
        .collect();
    // The header, the segments section, the first table page, the page checksums.
    offsets.extend([
        0,
        8,
        13,
        20,
        30,
        60,
        100,
        127,
        4096,
        4100,
        8200,
        original.len() - 1,
    ]);
    let mut ignored = 0;
    for at in offsets {
        let mut damaged = original.clone();
        damaged[at] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        let copy = tempfile::tempdir().unwrap();
        crash_copy(dir.path(), copy.path());
        let store = Store::open_with(copy.path(), small_segments()).unwrap();
        ignored += usize::from(store.open_report().snapshot_ignored.is_some());
        right_or_blaming(&store, &written, &copy.path().join("INDEX"));
    }
    assert!(ignored >= 8, "header damage is noticed on open ({ignored})");
    // Cut short or emptied: ignored.
    for len in [0, 100, original.len() / 2, original.len() - 1] {
        std::fs::write(&path, &original[..len]).unwrap();
        let store = Store::open_with(dir.path(), small_segments()).unwrap();
        assert!(
            store.open_report().snapshot_ignored.is_some(),
            "cut to {len}"
        );
        check(&store, &written);
    }
}

#[test]
fn a_snapshot_of_another_store_is_not_used() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let store = Store::open_with(a.path(), small_segments()).unwrap();
    fill(&store, 0, 300);
    store.close().unwrap();
    let store = Store::open_with(b.path(), small_segments()).unwrap();
    let written = fill(&store, 1000, 300);
    store.close().unwrap();
    std::fs::copy(a.path().join("INDEX"), b.path().join("INDEX")).unwrap();
    let store = Store::open_with(b.path(), small_segments()).unwrap();
    let report = store.open_report();
    assert_eq!(report.snapshot_position, None);
    let reason = report.snapshot_ignored.as_deref().unwrap();
    assert!(reason.contains("does not match"), "{reason}");
    check(&store, &written);
}

#[test]
fn a_snapshot_ahead_of_damage_in_the_tail_proves_it_was_synced() {
    let dir = tempfile::tempdir().unwrap();
    // No background sync while appending: no frame says anything was synced.
    let options = Options::default()
        .durability(Durability::Buffered)
        .flush_interval(Duration::from_secs(600));
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    fill(&store, 0, 50);
    store.close().unwrap();
    // The manifest's clean-close record is gone (as after a crash) and a frame in the middle
    // of the tail is damaged: only the snapshot, written after the close synced the tail,
    // proves that the frame had been synced.
    let tail = segment_files(dir.path()).pop().unwrap();
    let frame = frames(&tail)[20];
    let byte = std::fs::read(&tail).unwrap()[frame.offset + frame.len - 1];
    overwrite(&tail, frame.offset + frame.len - 1, &[byte ^ 1]);
    let manifest = dir.path().join("MANIFEST");
    let mut m = annals::format::Manifest::decode(&std::fs::read(&manifest).unwrap()).unwrap();
    assert!(m.closed.take().is_some());
    std::fs::write(&manifest, m.encode()).unwrap();
    match Store::open_with(dir.path(), options.clone()) {
        Err(Error::Corrupt {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, tail);
            assert_eq!(offset, frame.offset as u64);
            assert!(reason.contains("index snapshot"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Without the snapshot nothing proves it: the damaged end is cut as a torn write.
    std::fs::remove_file(dir.path().join("INDEX")).unwrap();
    let store = Store::open_with(dir.path(), options).unwrap();
    assert_eq!(store.next_position(), 20);
    assert!(store.open_report().cut.is_some());
}

#[test]
fn a_snapshot_remembering_fewer_ids_than_a_grown_window_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let small = small_segments().dedup_window(100);
    let store = Store::open_with(dir.path(), small).unwrap();
    let written = fill(&store, 0, 1000);
    store.close().unwrap();
    // The window grew: the snapshot's 100 ids are too few; the side files have the rest.
    let store = Store::open_with(dir.path(), small_segments().dedup_window(10_000)).unwrap();
    let report = store.open_report();
    assert_eq!(report.snapshot_position, None);
    let reason = report.snapshot_ignored.as_deref().unwrap();
    assert!(reason.contains("dedup window"), "{reason}");
    let (stream, n) = &written[5];
    let again = store
        .append(stream, ExpectedVersion::Any, [event(stream, *n)])
        .unwrap();
    assert!(again.deduplicated, "an old id within the grown window");
    check(&store, &written);
}
