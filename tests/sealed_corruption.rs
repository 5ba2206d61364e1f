//! Damage in a sealed segment is `Error::Corrupt` naming the file and the offset: never a
//! panic, never silent loss, never wrong bytes returned as an event.

mod common;

use std::path::{Path, PathBuf};

use annals::{Error, ExpectedVersion, Store};
use common::*;

/// A closed store spanning several segments; returns its segment files.
fn sealed_store(dir: &Path) -> Vec<PathBuf> {
    let store = Store::open_with(dir, small_segments()).unwrap();
    for n in 0..300 {
        store
            .append(
                &format!("s-{}", n % 7),
                ExpectedVersion::Any,
                [event("x", n)],
            )
            .unwrap();
    }
    store.close().unwrap();
    let files = segment_files(dir);
    assert!(files.len() >= 3);
    files
}

/// Opening or reading the store must give `Corrupt` for `file` at `offset`, and no event
/// read before the error may differ from what was written.
fn expect_corrupt(dir: &Path, file: &Path, offset: usize) {
    let err = match Store::open_with(dir, small_segments()) {
        Err(e) => e,
        Ok(store) => {
            let mut error = None;
            for (n, ev) in (0u64..).zip(store.read_all(0)) {
                match ev {
                    Ok(ev) => assert_eq!(ev.payload(), payload("x", n).as_slice()),
                    Err(e) => {
                        error = Some(e);
                        break;
                    }
                }
            }
            error.expect("reading past the damage must fail")
        }
    };
    match err {
        Error::Corrupt {
            file: f,
            offset: o,
            reason,
        } => {
            assert_eq!(f, file, "{reason}");
            assert_eq!(o, offset as u64, "{reason}");
            assert!(!reason.is_empty());
        }
        other => panic!("expected Corrupt, got {other}"),
    }
}

#[test]
fn a_flipped_payload_byte_in_a_sealed_segment_is_reported_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let files = sealed_store(dir.path());
    let sealed = &files[1];
    let frame = frames(sealed)[4];
    let at = frame.offset + frame.len - 3;
    let original = std::fs::read(sealed).unwrap()[at];
    overwrite(sealed, at, &[original ^ 0x01]);
    expect_corrupt(dir.path(), sealed, frame.offset);
}

#[test]
fn every_byte_of_a_sealed_frame_is_protected() {
    let dir = tempfile::tempdir().unwrap();
    let files = sealed_store(dir.path());
    let sealed = &files[0];
    let frame = frames(sealed)[2];
    let original = std::fs::read(sealed).unwrap();
    for at in frame.offset..frame.offset + frame.len {
        let mut damaged = original.clone();
        damaged[at] ^= 0x80;
        std::fs::write(sealed, &damaged).unwrap();
        let store = Store::open_with(dir.path(), small_segments());
        let failed = match store {
            Err(Error::Corrupt { file, .. }) => file == *sealed,
            Err(other) => panic!("byte {at}: expected Corrupt, got {other}"),
            Ok(store) => store.read_all(0).any(|ev| ev.is_err()),
        };
        assert!(failed, "flip at byte {at} went unnoticed");
    }
}

#[test]
fn a_damaged_segment_header_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let files = sealed_store(dir.path());
    overwrite(&files[1], 20, &[0xFF]);
    match Store::open_with(dir.path(), small_segments()) {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert_eq!(file, files[1]);
            assert_eq!(offset, 0);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_missing_segment_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let files = sealed_store(dir.path());
    std::fs::remove_file(&files[1]).unwrap();
    match Store::open_with(dir.path(), small_segments()) {
        Err(Error::Corrupt { file, .. }) => assert_eq!(file, files[2]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn a_sealed_segment_cut_short_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let files = sealed_store(dir.path());
    let last = *frames(&files[0]).last().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap();
    f.set_len((last.offset + last.len / 2) as u64).unwrap();
    drop(f);
    expect_corrupt(dir.path(), &files[0], last.offset);
}
