//! Erasure (GDPR): after `erase_stream` no byte of the stream's name, types, ids, payloads or
//! metadata is in any file under the store directory, every other event is byte-identical
//! at its position, appends made meanwhile are all there, and the name starts a new stream.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use annals::{verify, Error, EventData, ExpectedVersion, RecordedEvent, Store};
use common::{event, read_everything, small_segments};

const NAME: &str = "user-4242-erasable";
const TYPE: &str = "PersonalDataRecorded";
const SECRET: &[u8] = b"alice.liddell@example.org";
const META: &[u8] = b"client-ip=203.0.113.77";
const ID: u128 = 0x5EC2_E7A1_1CE0_0000_0000_0000_0000_0000;

fn personal(n: u64) -> EventData {
    let mut payload = SECRET.to_vec();
    payload.extend_from_slice(format!("/{n}").as_bytes());
    EventData::new(TYPE, payload)
        .metadata(META.to_vec())
        .id(ID + u128::from(n))
}

/// Every file under `dir`, recursively, with its bytes.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).expect("read")));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The stream's name, type, payload, metadata and ids are nowhere under `dir`.
fn assert_no_trace(dir: &Path, events: u64) {
    let mut needles: Vec<(String, Vec<u8>)> = vec![
        ("name".into(), NAME.as_bytes().to_vec()),
        ("type".into(), TYPE.as_bytes().to_vec()),
        ("payload".into(), SECRET.to_vec()),
        ("metadata".into(), META.to_vec()),
    ];
    for n in 0..events {
        needles.push((
            format!("id {n}"),
            (ID + u128::from(n)).to_le_bytes().to_vec(),
        ));
    }
    for (path, bytes) in files(dir) {
        for (what, needle) in &needles {
            assert!(
                !contains(&bytes, needle),
                "the erased stream's {what} is still in {}",
                path.display()
            );
        }
    }
}

fn without_erased(events: &[RecordedEvent]) -> Vec<RecordedEvent> {
    events
        .iter()
        .filter(|e| e.stream() != NAME)
        .cloned()
        .collect()
}

#[test]
fn erasure_leaves_no_byte_of_the_stream_and_every_other_event_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    let mut personal_events = 0;
    for i in 0..1_200u64 {
        let other = format!("order-{}", i % 7);
        store
            .append(&other, ExpectedVersion::Any, [event(&other, i)])
            .expect("append");
        if i % 10 == 0 {
            store
                .append(NAME, ExpectedVersion::Any, [personal(personal_events)])
                .expect("append personal");
            personal_events += 1;
        }
    }
    store.save_checkpoint("projector", 500).expect("checkpoint");
    // The last of its events sits in the tail, which erasure seals first.
    let before = read_everything(&store);
    let report = store.erase_stream(NAME).expect("erase");
    assert_eq!(report.events_removed, personal_events);
    assert!(report.segments_rewritten > 1, "{report:?}");
    assert_no_trace(dir.path(), personal_events);
    assert_eq!(read_everything(&store), without_erased(&before));
    assert_eq!(store.stream_version(NAME), None);
    assert_eq!(store.read_stream(NAME, 0).count(), 0);
    assert_eq!(store.retention(NAME), None);

    // The name starts a new stream, and the erased ids are not held any more.
    let again = store
        .append(NAME, ExpectedVersion::NoStream, [personal(0)])
        .expect("a new stream under the erased name");
    assert_eq!(again.first_version, 0);
    assert!(!again.deduplicated);
    store.erase_stream(NAME).expect("erase the new one too");
    drop(store);
    assert_no_trace(dir.path(), personal_events);

    let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
    assert_eq!(read_everything(&store), without_erased(&before));
    assert_eq!(store.stream_version(NAME), None);
    assert_eq!(
        store.checkpoint("projector").expect("checkpoint"),
        Some(500)
    );
    drop(store);
    let report = verify(dir.path()).expect("verify");
    assert!(report.is_sound(), "{report:?}");
    assert_no_trace(dir.path(), personal_events);
}

#[test]
fn appends_go_on_while_a_stream_is_erased() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    for i in 0..600u64 {
        store
            .append("bulk-1", ExpectedVersion::Any, [event("bulk-1", i)])
            .expect("append");
        store
            .append(NAME, ExpectedVersion::Any, [personal(i)])
            .expect("append personal");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut refused = 0;
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) || n < 200 {
                let r = store
                    .append("live-1", ExpectedVersion::Any, [event("live-1", n)])
                    .expect("append during erasure");
                acknowledged.push(r.first_position);
                match store.append(NAME, ExpectedVersion::Any, [EventData::new("Late", vec![])]) {
                    Ok(_) | Err(Error::Erasing { .. }) => {}
                    Err(e) => panic!("append to the stream being erased: {e}"),
                }
                refused += 1;
                n += 1;
            }
            (acknowledged, refused)
        })
    };
    let report = store.erase_stream(NAME).expect("erase");
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, _) = writer.join().expect("writer thread");
    assert!(report.events_removed >= 600, "{report:?}");
    let all = read_everything(&store);
    for position in &acknowledged {
        let ev = all
            .iter()
            .find(|e| e.position() == *position)
            .expect("an append made during the erasure is there");
        assert_eq!(ev.stream(), "live-1");
    }
    let bulk: Vec<_> = all.iter().filter(|e| e.stream() == "bulk-1").collect();
    assert_eq!(bulk.len(), 600);
    // Appends that got in after the erasure form a new stream from version 0.
    if let Some(v) = store.stream_version(NAME) {
        let versions: Vec<u64> = store
            .read_stream(NAME, 0)
            .map(|e| e.expect("read").version())
            .collect();
        assert_eq!(versions, (0..=v).collect::<Vec<_>>());
    }
}

#[test]
fn erasing_a_stream_that_has_no_events_is_a_no_op() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store
        .append("a-1", ExpectedVersion::Any, [EventData::new("T", vec![1])])
        .expect("append");
    let report = store.erase_stream("nobody").expect("erase");
    assert_eq!(report.events_removed, 0);
    assert!(matches!(
        store.erase_stream(""),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(read_everything(&store).len(), 1);
}

#[test]
fn a_live_subscription_goes_on_across_the_rewrite_of_the_segment_it_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    for i in 0..100u64 {
        store
            .append("other-1", ExpectedVersion::Any, [event("other-1", i)])
            .expect("append");
        store
            .append(NAME, ExpectedVersion::Any, [personal(i)])
            .expect("append personal");
    }
    let mut sub = store.subscribe_all(0);
    let mut seen = Vec::new();
    while let Some(ev) = sub
        .next_timeout(std::time::Duration::from_millis(20))
        .expect("catch up")
    {
        seen.push(ev.position());
    }
    assert_eq!(seen.len(), 200);
    // The subscription waits at the end of the tail; erasure seals and rewrites it.
    store.erase_stream(NAME).expect("erase");
    let after = store
        .append("other-1", ExpectedVersion::Any, [event("other-1", 100)])
        .expect("append after erasure");
    let next = sub
        .next_timeout(std::time::Duration::from_secs(5))
        .expect("read on")
        .expect("the new event");
    assert_eq!(next.position(), after.first_position);
    assert_eq!(next.stream(), "other-1");
}

#[test]
fn an_erased_name_used_again_survives_compaction_and_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crashed = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open_with(dir.path(), small_segments()).expect("open");
        for i in 0..300u64 {
            store
                .append(NAME, ExpectedVersion::Any, [personal(i)])
                .expect("append");
        }
    }
    // Reopened through the index snapshot that holds the name's hash.
    let store = Store::open_with(dir.path(), small_segments()).expect("reopen");
    store.erase_stream(NAME).expect("erase");
    for i in 0..400u64 {
        store
            .append(
                NAME,
                ExpectedVersion::Any,
                [EventData::new("Again", vec![i as u8])],
            )
            .expect("a new stream under the name");
    }
    store
        .set_retention(NAME, annals::Retention::default().max_count(5))
        .expect("retention");
    store.compact().expect("compact");
    common::crash_copy(dir.path(), crashed.path());
    let reopened = Store::open_with(crashed.path(), small_segments()).expect("open after crash");
    assert_eq!(reopened.stream_version(NAME), Some(399));
    let versions: Vec<u64> = reopened
        .read_stream(NAME, 0)
        .map(|e| e.expect("read").version())
        .collect();
    assert_eq!(versions, (395..400).collect::<Vec<_>>());
}
