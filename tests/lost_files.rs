//! A lost file is damage too: a missing tail segment (with or without its side file), a
//! missing manifest or a store emptied of its segments is `Error::Corrupt` naming the file,
//! never a shorter log. And opening never deletes or trips over files it does not own.

mod common;

use std::path::Path;

use annals::{Error, ExpectedVersion, Store};
use common::*;

/// A closed store over several segments; returns its event count.
fn store_over_segments(dir: &Path) -> u64 {
    let store = Store::open_with(dir, small_segments()).unwrap();
    for n in 0..300 {
        store
            .append("s", ExpectedVersion::Any, [event("s", n)])
            .unwrap();
    }
    store.close().unwrap();
    assert!(segment_files(dir).len() >= 3);
    300
}

fn expect_corrupt_naming(dir: &Path, file: &Path) -> String {
    match Store::open_with(dir, small_segments()) {
        Err(Error::Corrupt {
            file: f, reason, ..
        }) => {
            assert_eq!(f, file, "{reason}");
            reason
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(store) => panic!("opened with {} events", store.next_position()),
    }
}

#[test]
fn a_lost_tail_segment_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    store_over_segments(dir.path());
    let tail = segment_files(dir.path()).pop().unwrap();
    std::fs::remove_file(&tail).unwrap();
    let reason = expect_corrupt_naming(dir.path(), &tail);
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn a_lost_tail_and_the_last_side_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_over_segments(dir.path());
    let mut segments = segment_files(dir.path());
    let tail = segments.pop().unwrap();
    std::fs::remove_file(&tail).unwrap();
    std::fs::remove_file(segments.last().unwrap().with_extension("idx")).unwrap();
    expect_corrupt_naming(dir.path(), &tail);
}

#[test]
fn the_last_two_segments_lost_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_over_segments(dir.path());
    let segments = segment_files(dir.path());
    let tail = &segments[segments.len() - 1];
    std::fs::remove_file(tail).unwrap();
    std::fs::remove_file(&segments[segments.len() - 2]).unwrap();
    expect_corrupt_naming(dir.path(), tail);
}

#[test]
fn a_lost_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_over_segments(dir.path());
    let manifest = dir.path().join("MANIFEST");
    std::fs::remove_file(&manifest).unwrap();
    expect_corrupt_naming(dir.path(), &manifest);
}

#[test]
fn a_store_emptied_of_its_segments_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_over_segments(dir.path());
    for segment in segment_files(dir.path()) {
        std::fs::remove_file(segment).unwrap();
    }
    let reason = expect_corrupt_naming(dir.path(), &segment_files_expected_tail(dir.path()));
    assert!(reason.contains("missing"), "{reason}");
}

/// The tail segment the manifest of a store names (read through the public format module).
fn segment_files_expected_tail(dir: &Path) -> std::path::PathBuf {
    let bytes = std::fs::read(dir.join("MANIFEST")).unwrap();
    let manifest = annals::format::Manifest::decode(&bytes).unwrap();
    dir.join(format!("{:020}.log", manifest.tail.base_position))
}

#[test]
fn a_damaged_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    store_over_segments(dir.path());
    let manifest = dir.path().join("MANIFEST");
    overwrite(&manifest, 20, &[0xFF]);
    let reason = expect_corrupt_naming(dir.path(), &manifest);
    assert!(reason.contains("checksum"), "{reason}");
}

#[test]
fn files_and_directories_the_store_does_not_own_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let events = store_over_segments(dir.path());
    let foreign_dirs = ["backup.tmp", "00000000000000000001.log.tmp", "old.log"];
    for d in foreign_dirs {
        std::fs::create_dir(dir.path().join(d)).unwrap();
    }
    let foreign_files = ["notes.tmp", "README", "00000000000000000000.log.bak"];
    for f in foreign_files {
        std::fs::write(dir.path().join(f), b"mine").unwrap();
    }
    // A temporary file of the store's own, left by a crash, is removed.
    let own = dir.path().join("00000000000000000000.idx.tmp");
    std::fs::write(&own, b"half written").unwrap();

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(store.next_position(), events);
    drop(store);
    for d in foreign_dirs {
        assert!(dir.path().join(d).is_dir(), "{d} was removed");
    }
    for f in foreign_files {
        assert_eq!(std::fs::read(dir.path().join(f)).unwrap(), b"mine");
    }
    assert!(
        !own.exists(),
        "a leftover temporary file of the store stays"
    );
}

#[test]
fn a_fresh_store_and_one_never_appended_to_open_again() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    drop(Store::open(dir.path()).unwrap());
    let store = Store::open(dir.path()).unwrap();
    store
        .append("s", ExpectedVersion::NoStream, [event("s", 0)])
        .unwrap();
    drop(store);
    assert_eq!(Store::open(dir.path()).unwrap().next_position(), 1);
}
