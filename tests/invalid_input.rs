//! Input that breaks the API's rules is `Error::InvalidInput` naming the problem, and writes
//! nothing.

use annals::{Error, EventData, ExpectedVersion, Options, Store};

fn invalid(result: annals::Result<impl std::fmt::Debug>, mentions: &str) {
    match result {
        Err(Error::InvalidInput(msg)) => {
            assert!(msg.contains(mentions), "{msg:?} lacks {mentions:?}")
        }
        other => panic!("expected InvalidInput mentioning {mentions:?}, got {other:?}"),
    }
}

#[test]
fn bad_appends_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), Options::default().max_event_size(1000)).unwrap();
    let ok = || EventData::new("T", vec![0; 10]);
    invalid(
        store.append("", ExpectedVersion::Any, [ok()]),
        "stream name",
    );
    invalid(
        store.append(&"s".repeat(256), ExpectedVersion::Any, [ok()]),
        "stream name",
    );
    invalid(store.append("s", ExpectedVersion::Any, []), "no events");
    invalid(
        store.append("s", ExpectedVersion::Any, [EventData::new("", vec![])]),
        "event type",
    );
    invalid(
        store.append(
            "s",
            ExpectedVersion::Any,
            [ok(), EventData::new("T".repeat(256), vec![])],
        ),
        "event type",
    );
    invalid(
        store.append(
            "s",
            ExpectedVersion::Any,
            [EventData::new("T", vec![0; 900]).metadata(vec![0; 101])],
        ),
        "max_event_size",
    );
    assert_eq!(store.next_position(), 0);
    assert_eq!(store.read_all(0).count(), 0);

    // The limits themselves are fine.
    let r = store
        .append(
            &"s".repeat(255),
            ExpectedVersion::NoStream,
            [
                EventData::new("T".repeat(255), vec![0; 1000]),
                EventData::new("E", vec![]),
            ],
        )
        .unwrap();
    assert_eq!((r.first_position, r.last_position), (0, 1));
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    invalid(
        Store::open_with(dir.path(), Options::default().segment_size(1000)),
        "segment_size",
    );
    invalid(
        Store::open_with(dir.path(), Options::default().segment_size(2 << 30)),
        "segment_size",
    );
    invalid(
        Store::open_with(dir.path(), Options::default().max_event_size(0)),
        "max_event_size",
    );
    invalid(
        Store::open_with(
            dir.path(),
            Options::default().flush_interval(std::time::Duration::ZERO),
        ),
        "flush_interval",
    );
}

#[test]
fn a_directory_that_is_not_a_store_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("00000000000000000000.log"),
        b"hello, this file is not a segment of an annals store",
    )
    .unwrap();
    match Store::open(dir.path()) {
        Err(Error::Corrupt {
            file,
            offset: 0,
            reason,
        }) => {
            assert!(file.ends_with("00000000000000000000.log"));
            assert!(reason.contains("magic"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(Store::open(&file), Err(Error::Io { .. })));
}
