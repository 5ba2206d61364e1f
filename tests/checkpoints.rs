//! Checkpoint files: any valid name works (including one ending in `.tmp`), saving one never
//! touches another, and a damaged file does not hide the others.

mod common;

use annals::{Error, Store};

#[test]
fn a_checkpoint_named_like_a_temporary_file_is_listed_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save_checkpoint("proj.tmp", 5).unwrap();
    store.save_checkpoint("proj", 7).unwrap();
    assert_eq!(store.checkpoint("proj.tmp").unwrap(), Some(5));
    assert_eq!(
        store.checkpoints().unwrap(),
        [("proj".to_string(), 7), ("proj.tmp".to_string(), 5)]
    );
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.checkpoint("proj.tmp").unwrap(), Some(5));
}

#[test]
fn a_damaged_checkpoint_does_not_hide_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for (name, position) in [("a", 1), ("b", 2), ("c", 3)] {
        store.save_checkpoint(name, position).unwrap();
    }
    let damaged = dir.path().join("checkpoints").join("b");
    common::overwrite(&damaged, 10, &[0xAB]);
    assert_eq!(
        store.checkpoints().unwrap(),
        [("a".to_string(), 1), ("c".to_string(), 3)]
    );
    let bad = store.damaged_checkpoints().unwrap();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, "b");
    assert!(matches!(&bad[0].1, Error::Corrupt { file, .. } if *file == damaged));
    assert!(matches!(store.checkpoint("b"), Err(Error::Corrupt { .. })));
    // Saving it again repairs it.
    store.save_checkpoint("b", 4).unwrap();
    assert!(store.damaged_checkpoints().unwrap().is_empty());
    assert_eq!(store.checkpoint("b").unwrap(), Some(4));
}

#[test]
fn a_save_interrupted_by_a_crash_leaves_the_old_value_and_no_litter() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.save_checkpoint("proj", 3).unwrap();
    drop(store);
    // A crash after the temporary file was written, before the rename.
    let leftover = dir.path().join("checkpoints").join(".proj.tmp");
    std::fs::write(&leftover, b"half").unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.checkpoint("proj").unwrap(), Some(3));
    assert!(!leftover.exists());
    assert_eq!(store.checkpoints().unwrap(), [("proj".to_string(), 3)]);
}
