//! Every `ExpectedVersion` case, with and without an existing stream: a match writes, a
//! mismatch is `WrongExpectedVersion { stream, expected, actual }` and writes nothing.

use annals::{Error, EventData, ExpectedVersion, Store};

fn ev() -> EventData {
    EventData::new("E", b"x".to_vec())
}

fn append(store: &Store, expected: ExpectedVersion) -> annals::Result<annals::AppendResult> {
    store.append("s", expected, [ev(), ev()])
}

fn assert_wrong(store: &Store, expected: ExpectedVersion, actual: Option<u64>) {
    let before = store.next_position();
    match append(store, expected) {
        Err(Error::WrongExpectedVersion {
            stream,
            expected: e,
            actual: a,
        }) => {
            assert_eq!(stream, "s");
            assert_eq!(e, expected);
            assert_eq!(a, actual);
        }
        other => panic!("{expected:?} with actual {actual:?}: expected an error, got {other:?}"),
    }
    assert_eq!(
        store.next_position(),
        before,
        "a failed append wrote something"
    );
}

#[test]
fn on_a_stream_with_no_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.append("other", ExpectedVersion::Any, [ev()]).unwrap();
    assert_wrong(&store, ExpectedVersion::StreamExists, None);
    assert_wrong(&store, ExpectedVersion::Exact(0), None);
    let r = append(&store, ExpectedVersion::NoStream).unwrap();
    assert_eq!((r.first_version, r.last_version), (0, 1));
    assert_eq!((r.first_position, r.last_position), (1, 2));

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let r = append(&store, ExpectedVersion::Any).unwrap();
    assert_eq!((r.first_version, r.last_version), (0, 1));
}

#[test]
fn on_an_existing_stream() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    append(&store, ExpectedVersion::NoStream).unwrap(); // versions 0, 1
    assert_wrong(&store, ExpectedVersion::NoStream, Some(1));
    assert_wrong(&store, ExpectedVersion::Exact(0), Some(1));
    assert_wrong(&store, ExpectedVersion::Exact(2), Some(1));
    let r = append(&store, ExpectedVersion::Exact(1)).unwrap();
    assert_eq!((r.first_version, r.last_version), (2, 3));
    let r = append(&store, ExpectedVersion::StreamExists).unwrap();
    assert_eq!((r.first_version, r.last_version), (4, 5));
    let r = append(&store, ExpectedVersion::Any).unwrap();
    assert_eq!((r.first_version, r.last_version), (6, 7));
    assert_eq!(store.stream_version("s"), Some(7));
}

#[test]
fn checks_hold_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    append(&store, ExpectedVersion::NoStream).unwrap();
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_wrong(&store, ExpectedVersion::NoStream, Some(1));
    assert_wrong(&store, ExpectedVersion::Exact(0), Some(1));
    append(&store, ExpectedVersion::Exact(1)).unwrap();
}

#[test]
fn only_one_of_many_racing_writers_with_the_same_expected_version_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    append(&store, ExpectedVersion::NoStream).unwrap();
    for round in 0..20u64 {
        let expected = ExpectedVersion::Exact(1 + 2 * round);
        let wins: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| append(&store, expected).is_ok()))
                .collect();
            handles
                .into_iter()
                .map(|h| usize::from(h.join().unwrap()))
                .sum()
        });
        assert_eq!(wins, 1, "round {round}");
    }
    assert_eq!(store.stream_version("s"), Some(41));
}
