//! Idempotent appends by event id: a full duplicate writes nothing and returns the original
//! positions; a partial one is `DuplicateEvent`; ids are remembered across restarts and for at
//! least `dedup_window` events.

mod common;

use annals::{Error, EventData, ExpectedVersion, Options, Store};

fn with_id(id: u128) -> EventData {
    EventData::new("E", id.to_le_bytes().to_vec()).id(id)
}

#[test]
fn a_full_duplicate_writes_nothing_and_returns_the_original_positions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("other", ExpectedVersion::Any, [with_id(1)])
        .unwrap();
    let first = store
        .append(
            "s",
            ExpectedVersion::NoStream,
            [with_id(1), with_id(2), with_id(3)],
        )
        .unwrap();
    store
        .append("s", ExpectedVersion::Any, [with_id(4)])
        .unwrap();
    let next = store.next_position();

    // Same events again, with an expected version that would now fail: still a no-op.
    let again = store
        .append(
            "s",
            ExpectedVersion::NoStream,
            [with_id(1), with_id(2), with_id(3)],
        )
        .unwrap();
    assert!(again.deduplicated);
    assert_eq!(
        (
            again.first_position,
            again.last_position,
            again.first_version,
            again.last_version
        ),
        (
            first.first_position,
            first.last_position,
            first.first_version,
            first.last_version
        )
    );
    // A trailing subset of an earlier append is a full duplicate too.
    let tail = store
        .append("s", ExpectedVersion::Any, [with_id(3), with_id(4)])
        .unwrap();
    assert!(tail.deduplicated);
    assert_eq!((tail.first_version, tail.last_version), (2, 3));
    assert_eq!(store.next_position(), next, "nothing was written");
}

#[test]
fn a_partial_duplicate_is_an_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append("s", ExpectedVersion::Any, [with_id(1), with_id(2)])
        .unwrap();
    let next = store.next_position();
    for events in [
        vec![with_id(9), with_id(2)],
        vec![with_id(1), EventData::new("E", vec![])],
        vec![with_id(2), with_id(1)], // all held, but in another order
    ] {
        match store.append("s", ExpectedVersion::Any, events) {
            Err(Error::DuplicateEvent { stream, id }) => {
                assert_eq!(stream, "s");
                assert!(id == 1 || id == 2);
            }
            other => panic!("expected DuplicateEvent, got {other:?}"),
        }
    }
    assert_eq!(store.next_position(), next);
    // The same ids in another stream are not duplicates.
    assert!(
        !store
            .append("t", ExpectedVersion::Any, [with_id(1)])
            .unwrap()
            .deduplicated
    );
    // Nor are events without ids.
    store
        .append("s", ExpectedVersion::Any, [EventData::new("E", vec![])])
        .unwrap();
}

#[test]
fn the_same_id_twice_in_one_append_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = store.append(
        "s",
        ExpectedVersion::Any,
        [with_id(5), with_id(6), with_id(5)],
    );
    assert!(matches!(r, Err(Error::InvalidInput(m)) if m.contains("twice")));
}

#[test]
fn ids_are_remembered_across_restarts_and_segments() {
    let dir = tempfile::tempdir().unwrap();
    let options = common::small_segments();
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    let mut originals = Vec::new();
    for i in 0..400u128 {
        let big = EventData::new("E", vec![7; 400]).id(i);
        let r = store
            .append(&format!("s-{}", i % 7), ExpectedVersion::Any, [big])
            .unwrap();
        originals.push(r);
    }
    drop(store);
    assert!(common::segment_files(dir.path()).len() > 1);
    let store = Store::open_with(dir.path(), options).unwrap();
    let next = store.next_position();
    for i in (0..400u128).step_by(13) {
        let r = store
            .append(
                &format!("s-{}", i % 7),
                ExpectedVersion::NoStream,
                [with_id(i)],
            )
            .unwrap();
        assert!(r.deduplicated, "id {i} was forgotten");
        assert_eq!(r.first_position, originals[i as usize].first_position);
    }
    assert_eq!(store.next_position(), next);
}

#[test]
fn ids_outside_the_window_may_be_appended_again() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().dedup_window(10);
    let store = Store::open_with(dir.path(), options.clone()).unwrap();
    for i in 0..30u128 {
        store
            .append("s", ExpectedVersion::Any, [with_id(i)])
            .unwrap();
    }
    // The newest 10 are remembered; the oldest are not.
    assert!(
        store
            .append("s", ExpectedVersion::Any, [with_id(25)])
            .unwrap()
            .deduplicated
    );
    let old = store
        .append("s", ExpectedVersion::Any, [with_id(0)])
        .unwrap();
    assert!(!old.deduplicated);
    assert_eq!(old.first_version, 30);
    drop(store);
    // The same holds after a restart (the window is rebuilt from the log).
    let store = Store::open_with(dir.path(), options).unwrap();
    assert!(
        store
            .append("s", ExpectedVersion::Any, [with_id(29)])
            .unwrap()
            .deduplicated
    );
    assert!(
        !store
            .append("s", ExpectedVersion::Any, [with_id(1)])
            .unwrap()
            .deduplicated
    );
    assert_eq!(store.stats().remembered_ids, 10);
}
