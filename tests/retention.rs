//! Soft deletes and retention rules: persisted, durable when they return, applied by stream
//! reads at once (both ways), and nothing else hidden until compaction.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use annals::{Error, EventData, ExpectedVersion, Options, Retention, Store};
use common::overwrite;

fn versions(store: &Store, stream: &str) -> Vec<u64> {
    store
        .read_stream(stream, 0)
        .map(|e| e.map(|e| e.version()))
        .collect::<annals::Result<_>>()
        .expect("read_stream")
}

fn versions_backward(store: &Store, stream: &str) -> Vec<u64> {
    store
        .read_stream_backward(stream, None)
        .map(|e| e.map(|e| e.version()))
        .collect::<annals::Result<_>>()
        .expect("read_stream_backward")
}

fn append(store: &Store, stream: &str, n: u64) {
    for i in 0..n {
        store
            .append(
                stream,
                ExpectedVersion::Any,
                [EventData::new("T", vec![i as u8])],
            )
            .expect("append");
    }
}

#[test]
fn a_soft_delete_hides_the_stream_at_once_and_durably_and_versions_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    append(&store, "order-1", 40);
    append(&store, "order-2", 3);
    let refused = store.delete_stream("order-1", ExpectedVersion::Exact(5));
    assert!(
        matches!(
            refused,
            Err(Error::WrongExpectedVersion {
                actual: Some(39),
                ..
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        versions(&store, "order-1").len(),
        40,
        "a refused delete hides nothing"
    );

    store
        .delete_stream("order-1", ExpectedVersion::Exact(39))
        .expect("delete");
    assert!(versions(&store, "order-1").is_empty());
    assert!(versions_backward(&store, "order-1").is_empty());
    assert_eq!(store.stream_version("order-1"), Some(39));
    assert_eq!(
        versions(&store, "order-2"),
        [0, 1, 2],
        "other streams untouched"
    );
    assert_eq!(
        store.read_all(0).count(),
        43,
        "read_all yields them until compaction"
    );
    store
        .delete_stream("never-written", ExpectedVersion::Any)
        .expect("delete nothing");

    // Killed right after: the delete is on disk.
    let crash = tempfile::tempdir().expect("tempdir");
    common::crash_copy(dir.path(), crash.path());
    let crashed = Store::open(crash.path()).expect("open the crash copy");
    assert!(versions(&crashed, "order-1").is_empty());
    drop(crashed);

    let r = store
        .append(
            "order-1",
            ExpectedVersion::Exact(39),
            [EventData::new("Again", vec![])],
        )
        .expect("append after delete");
    assert_eq!(r.first_version, 40);
    assert_eq!(versions(&store, "order-1"), [40]);
    assert_eq!(versions_backward(&store, "order-1"), [40]);
    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(versions(&store, "order-1"), [40]);
    assert_eq!(
        store.retention("order-1"),
        Some(Retention::default().truncate_before(40))
    );
}

#[test]
fn retention_rules_hide_by_count_version_and_age_both_ways_and_persist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    append(&store, "sensor-7", 300);
    store
        .set_retention("sensor-7", Retention::default().max_count(5))
        .expect("set");
    assert_eq!(versions(&store, "sensor-7"), [295, 296, 297, 298, 299]);
    assert_eq!(
        versions_backward(&store, "sensor-7"),
        [299, 298, 297, 296, 295]
    );
    let backward_from: Vec<u64> = store
        .read_stream_backward("sensor-7", Some(296))
        .map(|e| e.expect("read").version())
        .collect();
    assert_eq!(backward_from, [296, 295]);
    assert_eq!(store.read_stream("sensor-7", 298).count(), 2);

    store
        .set_retention(
            "sensor-7",
            Retention::default().truncate_before(290).max_count(100),
        )
        .expect("set");
    assert_eq!(versions(&store, "sensor-7"), (290..300).collect::<Vec<_>>());

    // By age: events stamped two days ago are hidden by a one-day rule, newer ones are not.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64;
    let day = 86_400_000_000;
    for (i, ts) in [now - 2 * day, now - 2 * day, now - 1000, now]
        .into_iter()
        .enumerate()
    {
        store
            .append(
                "meter-1",
                ExpectedVersion::Any,
                [EventData::new("T", vec![i as u8]).timestamp(ts)],
            )
            .expect("append");
    }
    store
        .set_retention(
            "meter-1",
            Retention::default().max_age(Duration::from_secs(86_400)),
        )
        .expect("set");
    assert_eq!(versions(&store, "meter-1"), [2, 3]);
    assert_eq!(versions_backward(&store, "meter-1"), [3, 2]);

    drop(store);
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(versions(&store, "sensor-7"), (290..300).collect::<Vec<_>>());
    assert_eq!(versions(&store, "meter-1"), [2, 3]);
    store
        .set_retention("meter-1", Retention::default())
        .expect("clear");
    assert_eq!(store.retention("meter-1"), None);
    assert_eq!(versions(&store, "meter-1"), [0, 1, 2, 3]);
    // Subscriptions deliver every committed event.
    let mut sub = store.subscribe_stream("sensor-7", 0);
    let first = sub
        .next_timeout(Duration::from_secs(5))
        .expect("subscription")
        .expect("event");
    assert_eq!(first.version(), 0);
}

#[test]
fn the_default_retention_applies_to_streams_without_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default().default_retention(Retention::default().max_count(2));
    let store = Store::open_with(dir.path(), options).expect("open");
    append(&store, "a", 5);
    append(&store, "b", 5);
    store
        .set_retention("b", Retention::default().max_count(4))
        .expect("set");
    assert_eq!(versions(&store, "a"), [3, 4]);
    assert_eq!(versions(&store, "b"), [1, 2, 3, 4]);
    drop(store);
    // Not stored: opened without it, "a" shows everything again; "b" keeps its own.
    let store = Store::open(dir.path()).expect("reopen");
    assert_eq!(versions(&store, "a"), [0, 1, 2, 3, 4]);
    assert_eq!(versions(&store, "b"), [1, 2, 3, 4]);
}

#[test]
fn bad_rules_read_only_handles_and_a_damaged_file_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    append(&store, "s", 3);
    for bad in [
        Retention::default().max_count(0),
        Retention::default().max_age(Duration::ZERO),
    ] {
        assert!(matches!(
            store.set_retention("s", bad),
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(matches!(
        store.set_retention("", Retention::default()),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.delete_stream("", ExpectedVersion::Any),
        Err(Error::InvalidInput(_))
    ));
    let bad_default = Options::default().default_retention(Retention::default().max_count(0));
    assert!(matches!(
        Store::open_with(dir.path().join("x"), bad_default),
        Err(Error::InvalidInput(_))
    ));
    store
        .set_retention("s", Retention::default().max_count(1))
        .expect("set");

    let reader = Store::open_read_only(dir.path()).expect("read-only");
    assert_eq!(
        versions(&reader, "s"),
        [2],
        "read-only handles apply the rules too"
    );
    assert!(matches!(
        reader.delete_stream("s", ExpectedVersion::Any),
        Err(Error::ReadOnly { .. })
    ));
    assert!(matches!(
        reader.set_retention("s", Retention::default()),
        Err(Error::ReadOnly { .. })
    ));
    drop((store, reader));

    overwrite(&dir.path().join("RETENTION"), 30, &[0xff]);
    match Store::open(dir.path()) {
        Err(Error::Corrupt { file, .. }) => assert_eq!(file, dir.path().join("RETENTION")),
        other => panic!("a damaged retention file: {other:?}"),
    }
}

#[test]
fn backups_keep_deletes_and_verify_checks_the_rules_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("live")).expect("open");
    append(&store, "user-1", 3);
    store
        .delete_stream("user-1", ExpectedVersion::Any)
        .expect("delete");
    store.backup(dir.path().join("copy")).expect("backup");
    let copy = Store::open(dir.path().join("copy")).expect("open copy");
    assert!(
        versions(&copy, "user-1").is_empty(),
        "a backup showed a deleted stream again"
    );
    drop(copy);
    assert!(annals::verify(dir.path().join("live"))
        .expect("verify")
        .is_sound());
    overwrite(&dir.path().join("live/RETENTION"), 30, &[0xff]);
    let report = annals::verify(dir.path().join("live")).expect("verify");
    assert_eq!(report.damages.len(), 1, "{:?}", report.damages);
    assert_eq!(report.damages[0].file, dir.path().join("live/RETENTION"));
    assert!(
        store.backup(dir.path().join("copy2")).is_err(),
        "a damaged rules file fails the backup"
    );
}

#[test]
fn new_rules_never_undo_a_delete_and_the_default_still_applies_after_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default().default_retention(Retention::default().max_count(3));
    let store = Store::open_with(dir.path(), options).expect("open");
    append(&store, "a", 5);
    store
        .delete_stream("a", ExpectedVersion::Exact(4))
        .expect("delete");
    store
        .set_retention("a", Retention::default().max_age(Duration::from_secs(3600)))
        .expect("set");
    assert!(
        versions(&store, "a").is_empty(),
        "new rules brought a deleted stream back"
    );
    store
        .set_retention("a", Retention::default())
        .expect("clear limits");
    assert_eq!(
        store.retention("a"),
        Some(Retention::default().truncate_before(5))
    );
    append(&store, "a", 5);
    // The default's max_count still applies to the events after the delete.
    assert_eq!(versions(&store, "a"), [7, 8, 9]);
    store
        .set_retention("b", Retention::default().truncate_before(0))
        .expect("set");
    assert_eq!(
        store.retention("b"),
        None,
        "truncate_before(0) is no rule at all"
    );
}

#[test]
fn a_delete_made_while_a_backup_runs_is_cut_back_to_what_the_copy_holds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("live")).expect("open");
    append(&store, "user-1", 3);
    let mut once = true;
    let report = store
        .backup_with_progress(dir.path().join("copy"), |_, _| {
            // After the log was copied, before the rules are: the stream grows and is deleted.
            if std::mem::take(&mut once) {
                append(&store, "user-1", 5);
                store
                    .delete_stream("user-1", ExpectedVersion::Exact(7))
                    .expect("delete");
            }
        })
        .expect("backup");
    assert_eq!(report.position, 3);
    let copy = Store::open(dir.path().join("copy")).expect("open copy");
    assert!(
        versions(&copy, "user-1").is_empty(),
        "the copy keeps the delete"
    );
    assert_eq!(
        copy.retention("user-1"),
        Some(Retention::default().truncate_before(3))
    );
    let r = copy
        .append(
            "user-1",
            ExpectedVersion::Exact(2),
            [EventData::new("Again", vec![])],
        )
        .expect("append to the copy");
    assert_eq!(
        versions(&copy, "user-1"),
        [r.first_version],
        "appends after the delete show"
    );
}
