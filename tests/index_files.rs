//! Index side files: written for every sealed segment, used on open instead of scanning the
//! segments (for the segments the index snapshot does not cover, or all of them without a
//! snapshot), and rebuilt (and reported) when missing, damaged or stale.

mod common;

use std::path::{Path, PathBuf};

use annals::{ExpectedVersion, Store};
use common::*;

fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    files.sort();
    files
}

/// A closed store over several segments, with 9 streams.
fn make_store(dir: &Path) -> u64 {
    let store = Store::open_with(dir, small_segments()).unwrap();
    for n in 0..600 {
        let s = format!("s-{}", n % 9);
        store
            .append(&s, ExpectedVersion::Any, [event(&s, n)])
            .unwrap();
    }
    let events = store.next_position();
    store.close().unwrap();
    events
}

/// Opens the store through its side files: the index snapshot, which would make them
/// unneeded, is removed first.
fn open_from_side_files(dir: &Path) -> Store {
    let _ = std::fs::remove_file(dir.join("INDEX"));
    let store = Store::open_with(dir, small_segments()).unwrap();
    assert_eq!(store.open_report().snapshot_position, None);
    store
}

/// Every stream reads back whole, in order, with the right payloads.
fn check_streams(store: &Store) {
    for k in 0..9u64 {
        let s = format!("s-{k}");
        let events: Vec<_> = store
            .read_stream(&s, 0)
            .collect::<annals::Result<_>>()
            .unwrap();
        assert_eq!(events.len(), (600 - k as usize).div_ceil(9));
        for (v, ev) in (0u64..).zip(&events) {
            assert_eq!(ev.version(), v);
            assert_event(ev, &s, k + 9 * v, ev.position(), v);
        }
    }
}

#[test]
fn every_sealed_segment_has_a_side_file_and_a_clean_open_uses_them() {
    let dir = tempfile::tempdir().unwrap();
    let events = make_store(dir.path());
    let segments = segment_files(dir.path());
    assert_eq!(index_files(dir.path()).len(), segments.len() - 1);
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let report = store.open_report();
    assert!(report.rebuilt_indexes.is_empty(), "{report:?}");
    assert_eq!((report.events, report.streams), (events, 9));
    check_streams(&store);
}

#[test]
fn open_does_not_scan_sealed_segments_but_reads_find_their_damage() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path());
    let sealed = &segment_files(dir.path())[0];
    let frame = frames(sealed)[3];
    let at = frame.offset + frame.len - 2;
    let byte = std::fs::read(sealed).unwrap()[at];
    overwrite(sealed, at, &[byte ^ 0x04]);
    // The side file still describes the segment (its last frame is intact): open trusts it.
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert!(store.open_report().rebuilt_indexes.is_empty());
    match store.read_all(0).find_map(Result::err) {
        Some(annals::Error::Corrupt { file, offset, .. }) => {
            assert_eq!(&file, sealed);
            assert_eq!(offset, frame.offset as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_missing_side_file_is_rebuilt_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path());
    let idx = index_files(dir.path())[1].clone();
    std::fs::remove_file(&idx).unwrap();
    let store = open_from_side_files(dir.path());
    let rebuilt = &store.open_report().rebuilt_indexes;
    assert_eq!(rebuilt.len(), 1);
    assert_eq!(rebuilt[0].file, idx);
    assert_eq!(rebuilt[0].reason, "missing");
    assert!(idx.exists(), "the side file is written again");
    check_streams(&store);
    drop(store);
    let store = open_from_side_files(dir.path());
    assert!(store.open_report().rebuilt_indexes.is_empty());
}

#[test]
fn a_damaged_side_file_is_rebuilt_whatever_byte_is_hit() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path());
    let idx = index_files(dir.path())[0].clone();
    let original = std::fs::read(&idx).unwrap();
    let mut rng = Rng::from_clock("a_damaged_side_file_is_rebuilt_whatever_byte_is_hit");
    let mut offsets: Vec<usize> = (0..40)
        .map(|_| rng.below(original.len() as u64) as usize)
        .collect();
    offsets.extend([0, 12, 60, 68, 72, original.len() - 1]);
    for at in offsets {
        let mut damaged = original.clone();
        damaged[at] ^= 0x21;
        std::fs::write(&idx, &damaged).unwrap();
        let store = open_from_side_files(dir.path());
        let rebuilt = &store.open_report().rebuilt_indexes;
        assert_eq!(
            rebuilt.len(),
            1,
            "flip at byte {at} of {} went unnoticed",
            original.len()
        );
        check_streams(&store);
        drop(store);
        assert_eq!(
            std::fs::read(&idx).unwrap(),
            original,
            "rebuilt file differs"
        );
    }
    // Cut short, or emptied.
    for len in [0, 10, original.len() / 2, original.len() - 1] {
        std::fs::write(&idx, &original[..len]).unwrap();
        let store = open_from_side_files(dir.path());
        assert_eq!(
            store.open_report().rebuilt_indexes.len(),
            1,
            "cut to {len} bytes"
        );
    }
}

#[test]
fn a_stale_side_file_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path());
    let files = index_files(dir.path());
    // The side file of another segment under this segment's name.
    std::fs::copy(&files[1], &files[0]).unwrap();
    let store = open_from_side_files(dir.path());
    let rebuilt = &store.open_report().rebuilt_indexes;
    assert_eq!(rebuilt.len(), 1);
    assert_eq!(rebuilt[0].file, files[0]);
    check_streams(&store);
}
