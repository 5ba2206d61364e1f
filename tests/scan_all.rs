//! The zero-copy replay (`scan_all`) sees exactly what `read_all` sees, can stop early, and
//! reports damage as `Corrupt` like every other read.

mod common;

use std::ops::ControlFlow;

use annals::{Error, ExpectedVersion, Store};
use common::*;

#[test]
fn scan_all_matches_read_all_from_any_position() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    for n in 0..500 {
        let s = format!("s-{}", n % 4);
        store
            .append(&s, ExpectedVersion::Any, [event(&s, n)])
            .unwrap();
    }
    let owned = read_everything(&store);
    for from in [0, 1, 250, 499, 500, 900] {
        let mut scanned = Vec::new();
        let seen = store
            .scan_all(from, |ev| {
                scanned.push(ev.to_owned());
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(seen as usize, owned.len().saturating_sub(from as usize));
        assert_eq!(scanned, owned[(from as usize).min(owned.len())..]);
    }
    let mut positions = Vec::new();
    let seen = store
        .scan_all(10, |ev| {
            positions.push(ev.position());
            if positions.len() == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!((seen, positions), (3, vec![10, 11, 12]));
}

#[test]
fn scan_all_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    for n in 0..300 {
        store
            .append("s", ExpectedVersion::Any, [event("s", n)])
            .unwrap();
    }
    drop(store);
    let sealed = &segment_files(dir.path())[0];
    let frame = frames(sealed)[5];
    let at = frame.offset + frame.len - 1;
    let byte = std::fs::read(sealed).unwrap()[at];
    overwrite(sealed, at, &[!byte]);
    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let mut seen = 0;
    match store.scan_all(0, |_| {
        seen += 1;
        ControlFlow::Continue(())
    }) {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert_eq!(&file, sealed);
            assert_eq!(offset, frame.offset as u64);
            assert_eq!(
                seen, frame.first_position,
                "every event before the damage, none after"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
