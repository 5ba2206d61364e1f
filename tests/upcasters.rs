//! Upcasters: applied on every read that yields a `RecordedEvent`, chained in order, never
//! changing the stored bytes; one that panics fails that read with an error naming the event.

mod common;

use std::ops::ControlFlow;
use std::time::Duration;

use annals::{Error, EventData, ExpectedVersion, Options, RecordedEvent, Store};
use common::small_segments;

/// v1 → v2 (adds a revision) and v2 → v3 (renames the type).
fn options() -> Options {
    small_segments()
        .upcaster("AgreementV1", |ev: &RecordedEvent| {
            let mut p = ev.payload().to_vec();
            p.extend_from_slice(b"+rev1");
            Some(EventData::new("AgreementV2", p).metadata(ev.metadata().to_vec()))
        })
        .upcaster("AgreementV2", |ev: &RecordedEvent| {
            Some(EventData::new("Agreement", ev.payload().to_vec()).metadata(b"v3".to_vec()))
        })
        .upcaster("Other", |_: &RecordedEvent| None)
}

fn is_upcast(ev: &RecordedEvent, n: u64) {
    assert_eq!(ev.event_type(), "Agreement", "{ev:?}");
    assert_eq!(ev.payload(), format!("accepted-{n}+rev1").as_bytes());
    assert_eq!(ev.metadata(), b"v3");
}

fn fill(store: &Store) {
    for n in 0..600u64 {
        let stream = format!("user-{}", n % 3);
        let ev = if n % 2 == 0 {
            EventData::new("AgreementV1", format!("accepted-{n}").into_bytes())
        } else {
            EventData::new("Other", format!("other-{n}").into_bytes())
        };
        store
            .append(&stream, ExpectedVersion::Any, [ev.id(u128::from(n) + 1)])
            .expect("append");
    }
}

fn check_reads(store: &Store) {
    let all: Vec<RecordedEvent> = store.read_all(0).map(|e| e.expect("read_all")).collect();
    assert_eq!(all.len(), 600);
    for ev in &all {
        let n = ev.position();
        match n % 2 {
            0 => is_upcast(ev, n),
            _ => assert_eq!(ev.event_type(), "Other"),
        }
        assert_eq!(ev.id(), Some(u128::from(n) + 1), "ids stay");
        assert_eq!(ev.stream(), format!("user-{}", n % 3));
    }
    for ev in store
        .read_stream("user-0", 0)
        .map(|e| e.expect("read_stream"))
    {
        if ev.position() % 2 == 0 {
            is_upcast(&ev, ev.position());
        }
    }
    let backward: Vec<_> = store
        .read_stream_backward("user-1", None)
        .map(|e| e.expect("backward"))
        .collect();
    assert_eq!(backward.len(), 200);
    for ev in backward.iter().filter(|e| e.position() % 2 == 0) {
        is_upcast(ev, ev.position());
    }
    // The type index holds the stored type: reading it yields the upcast events.
    let by_type: Vec<_> = store
        .read_by_type("AgreementV1", 0)
        .map(|e| e.expect("read_by_type"))
        .collect();
    assert_eq!(by_type.len(), 300);
    by_type.iter().for_each(|ev| is_upcast(ev, ev.position()));
    for ev in store
        .read_category("user", 590)
        .map(|e| e.expect("category"))
    {
        if ev.position() % 2 == 0 {
            is_upcast(&ev, ev.position());
        }
    }
    let mut sub = store.subscribe_all(0);
    let mut seen = 0;
    while let Some(ev) = sub
        .next_timeout(Duration::from_millis(20))
        .expect("subscription")
    {
        if ev.position() % 2 == 0 {
            is_upcast(&ev, ev.position());
        }
        seen += 1;
    }
    assert_eq!(seen, 600);
    let mut sub = store.subscribe_stream("user-2", 0);
    let ev = sub
        .next_timeout(Duration::from_secs(1))
        .expect("stream sub")
        .expect("one");
    is_upcast(&ev, ev.position());
}

#[test]
fn upcasters_apply_on_every_read_and_never_change_the_stored_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), options()).expect("open");
    fill(&store);
    check_reads(&store);
    // Zero-copy reads, and a store opened without upcasters, see the stored events.
    let mut stored = 0;
    store
        .scan_all(0, |ev| {
            if ev.position() % 2 == 0 {
                assert_eq!(ev.event_type(), "AgreementV1");
                assert_eq!(
                    ev.payload(),
                    format!("accepted-{}", ev.position()).as_bytes()
                );
                stored += 1;
            }
            ControlFlow::Continue(())
        })
        .expect("scan_all");
    assert_eq!(stored, 300);
    drop(store);
    let plain = Store::open_with(dir.path(), small_segments()).expect("reopen");
    let first = plain.read_all(0).next().expect("one").expect("read");
    assert_eq!(first.event_type(), "AgreementV1");
    drop(plain);
    let store = Store::open_with(dir.path(), options()).expect("reopen");
    check_reads(&store);
    let reader = Store::open_read_only_with(dir.path(), options()).expect("read-only");
    check_reads(&reader);
}

#[test]
fn an_upcaster_that_panics_fails_that_read_naming_the_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small_segments().upcaster("Bad", |ev: &RecordedEvent| {
        if ev.payload() == b"boom" {
            panic!("cannot read this one");
        }
        (ev.payload() == b"long").then(|| EventData::new("x".repeat(300), vec![]))
    });
    let store = Store::open_with(dir.path(), options).expect("open");
    for p in [&b"fine"[..], b"boom", b"long", b"fine"] {
        store
            .append(
                "s-1",
                ExpectedVersion::Any,
                [EventData::new("Bad", p.to_vec())],
            )
            .expect("append");
    }
    let results: Vec<_> = store.read_stream("s-1", 0).collect();
    assert!(results[0].is_ok());
    match &results[1] {
        Err(Error::Upcast {
            position,
            stream,
            reason,
            ..
        }) => {
            assert_eq!((*position, stream.as_str()), (1, "s-1"));
            assert!(reason.contains("cannot read this one"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // The store goes on: other reads work, and the bad events are named each time.
    let all: Vec<_> = (0..4)
        .map(|p| store.read_all(p).next().expect("an event"))
        .collect();
    assert!(all[0].is_ok() && all[3].is_ok());
    assert!(matches!(&all[1], Err(Error::Upcast { position: 1, .. })));
    assert!(matches!(&all[2], Err(Error::Upcast { position: 2, .. })));
    store
        .append(
            "s-1",
            ExpectedVersion::Any,
            [EventData::new("Good", vec![])],
        )
        .expect("appends go on");
}
