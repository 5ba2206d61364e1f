//! `Store::append_many`: many streams' appends in one go, each with `append`'s semantics.

mod common;

use annals::{Error, EventData, ExpectedVersion, Store};
use common::{assert_event, event, read_everything};

#[test]
fn appends_of_many_streams_land_in_order_each_checked_after_the_ones_before() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let results = store
        .append_many([
            (
                "a",
                ExpectedVersion::NoStream,
                vec![event("a", 0), event("a", 1)],
            ),
            ("b", ExpectedVersion::NoStream, vec![event("b", 2)]),
            // Sees the first append of this call: "a" is at version 1 by now.
            ("a", ExpectedVersion::Exact(1), vec![event("a", 3)]),
            // Fails alone: "b" exists.
            ("b", ExpectedVersion::NoStream, vec![event("b", 4)]),
            // Invalid input fails alone, before anything is written.
            ("", ExpectedVersion::Any, vec![event("x", 5)]),
            ("c", ExpectedVersion::Any, vec![event("c", 6)]),
        ])
        .expect("append_many");
    assert_eq!(results.len(), 6);
    let positions: Vec<Option<(u64, u64)>> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|r| (r.first_position, r.last_position)))
        .collect();
    assert_eq!(
        positions,
        [
            Some((0, 1)),
            Some((2, 2)),
            Some((3, 3)),
            None,
            None,
            Some((4, 4))
        ]
    );
    assert!(matches!(
        &results[3],
        Err(Error::WrongExpectedVersion {
            actual: Some(0),
            ..
        })
    ));
    assert!(matches!(&results[4], Err(Error::InvalidInput(_))));

    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    let all = read_everything(&store);
    assert_eq!(all.len(), 5);
    for (ev, (stream, n, version)) in all.iter().zip([
        ("a", 0, 0),
        ("a", 1, 1),
        ("b", 2, 0),
        ("a", 3, 2),
        ("c", 6, 0),
    ]) {
        assert_event(ev, stream, n, ev.position(), version);
    }
}

#[test]
fn ids_deduplicate_and_read_only_handles_refuse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    let first = store
        .append_many([("a", ExpectedVersion::Any, vec![event("a", 0)])])
        .expect("append_many");
    let again = store
        .append_many([
            ("a", ExpectedVersion::Any, vec![event("a", 0)]),
            (
                "b",
                ExpectedVersion::Any,
                vec![EventData::new("T", vec![1])],
            ),
        ])
        .expect("append_many");
    let (first, again) = (
        first[0].as_ref().expect("ok"),
        again[0].as_ref().expect("ok"),
    );
    assert!(again.deduplicated);
    assert_eq!(again.first_position, first.first_position);
    assert_eq!(store.next_position(), 2);
    let reader = Store::open_read_only(dir.path()).expect("read-only");
    let refused = reader.append_many([("a", ExpectedVersion::Any, vec![event("a", 9)])]);
    assert!(matches!(refused, Err(Error::ReadOnly { .. })));
}
