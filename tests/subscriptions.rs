//! Subscriptions catch up and then follow live appends: every event exactly once, in
//! position order, with filters, from inside sealed segments, and across restarts through
//! durable checkpoints.

mod common;

use std::time::Duration;

use annals::{EventData, ExpectedVersion, Store, Subscription};

const WAIT: Duration = Duration::from_secs(30);

/// Takes `n` events from `sub`, failing if one does not come within `WAIT`.
fn take(sub: &mut Subscription, n: usize) -> Vec<annals::RecordedEvent> {
    (0..n)
        .map(|i| {
            sub.next_timeout(WAIT)
                .unwrap()
                .unwrap_or_else(|| panic!("event {i} of {n} never came"))
        })
        .collect()
}

#[test]
fn concurrent_writers_and_several_subscribers_see_every_event_once_in_order() {
    const WRITERS: u64 = 6;
    const APPENDS: u64 = 150;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), common::small_segments()).unwrap();
    store
        .append(
            "seed",
            ExpectedVersion::Any,
            [EventData::new("Seed", vec![])],
        )
        .unwrap();
    let total: u64 = 1
        + (0..WRITERS)
            .map(|w| (0..APPENDS).map(|a| 1 + (a + w) % 3).sum::<u64>())
            .sum::<u64>();
    let received: Vec<Vec<annals::RecordedEvent>> = std::thread::scope(|s| {
        let subscribers: Vec<_> = (0..3)
            .map(|_| {
                let mut sub = store.subscribe_all(0);
                s.spawn(move || take(&mut sub, total as usize))
            })
            .collect();
        for w in 0..WRITERS {
            let store = &store;
            s.spawn(move || {
                for a in 0..APPENDS {
                    let events = (0..1 + (a + w) % 3)
                        .map(|i| EventData::new("E", format!("{w}/{a}/{i}").into_bytes()));
                    store
                        .append(&format!("w-{w}"), ExpectedVersion::Any, events)
                        .unwrap();
                }
            });
        }
        subscribers.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let log = common::read_everything(&store);
    assert_eq!(log.len() as u64, total);
    for events in received {
        assert_eq!(events, log, "a subscriber saw something else than the log");
    }
}

#[test]
fn a_subscription_can_start_inside_a_sealed_segment_and_continue_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), common::small_segments()).unwrap();
    for n in 0..400 {
        store
            .append("s", ExpectedVersion::Any, [common::event("s", n)])
            .unwrap();
    }
    assert!(common::segment_files(dir.path()).len() > 3);
    let mut sub = store.subscribe_all(57);
    let first = take(&mut sub, 343);
    assert_eq!(first.first().unwrap().position(), 57);
    assert_eq!(first.last().unwrap().position(), 399);
    assert!(sub.try_next().unwrap().is_none());
    assert!(sub
        .next_timeout(Duration::from_millis(20))
        .unwrap()
        .is_none());
    // A live append wakes the subscriber.
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(50));
            store
                .append("s", ExpectedVersion::Any, [common::event("s", 400)])
                .unwrap();
        });
        let live = sub.next_timeout(WAIT).unwrap().expect("the live event");
        assert_eq!(live.position(), 400);
        common::assert_event(&live, "s", 400, 400, 400);
    });
    assert_eq!(sub.position(), 401);
}

#[test]
fn filters_by_event_type_and_stream_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for n in 0..60u64 {
        let stream = if n % 2 == 0 {
            format!("student-{n}")
        } else {
            format!("teacher-{n}")
        };
        let kind = if n % 3 == 0 { "Enrolled" } else { "Answered" };
        store
            .append(
                &stream,
                ExpectedVersion::Any,
                [EventData::new(kind, n.to_le_bytes().to_vec())],
            )
            .unwrap();
    }
    let mut sub = store
        .subscribe_all(0)
        .stream_prefix("student-")
        .event_types(["Enrolled"]);
    let got: Vec<u64> = std::iter::from_fn(|| sub.try_next().unwrap())
        .map(|e| {
            assert!(e.stream().starts_with("student-"));
            assert_eq!(e.event_type(), "Enrolled");
            e.position()
        })
        .collect();
    assert_eq!(got, (0..60).filter(|n| n % 6 == 0).collect::<Vec<_>>());
    // The filtered-out events are passed: the position moves past them.
    assert_eq!(sub.position(), 60);
}

#[test]
fn a_stream_subscription_catches_up_through_the_index_then_follows_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), common::small_segments()).unwrap();
    for n in 0..300u64 {
        let stream = format!("s-{}", n % 3);
        store
            .append(&stream, ExpectedVersion::Any, [common::event(&stream, n)])
            .unwrap();
    }
    let mut sub = store.subscribe_stream("s-1", 40);
    let caught_up = take(&mut sub, 60);
    let versions: Vec<u64> = caught_up.iter().map(|e| e.version()).collect();
    assert_eq!(versions, (40..100).collect::<Vec<_>>());
    assert!(sub.try_next().unwrap().is_none());
    store
        .append("s-0", ExpectedVersion::Any, [common::event("s-0", 1000)])
        .unwrap();
    store
        .append("s-1", ExpectedVersion::Any, [common::event("s-1", 1001)])
        .unwrap();
    let live = sub.next_timeout(WAIT).unwrap().unwrap();
    assert_eq!((live.stream(), live.version()), ("s-1", 100));
    assert!(sub.try_next().unwrap().is_none());
}

#[test]
fn restarting_from_a_checkpoint_leaves_no_gap() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for n in 0..100 {
        store
            .append("s", ExpectedVersion::Any, [common::event("s", n)])
            .unwrap();
    }
    let mut sub = store.subscribe_all(0);
    let handled = take(&mut sub, 37);
    store
        .save_checkpoint("projector", handled.last().unwrap().position() + 1)
        .unwrap();
    drop(sub);
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    let from = store.checkpoint("projector").unwrap().unwrap();
    assert_eq!(from, 37);
    let mut sub = store.subscribe_all(from);
    let rest = take(&mut sub, 63);
    assert_eq!(rest.first().unwrap().position(), 37);
    assert_eq!(rest.last().unwrap().position(), 99);
    assert_eq!(
        store.checkpoints().unwrap(),
        [("projector".to_string(), 37)]
    );
}

#[test]
fn a_stalled_subscriber_does_not_hold_back_appends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), common::small_segments()).unwrap();
    let mut stalled = store.subscribe_all(0);
    let before = std::mem::size_of_val(&stalled);
    // Thousands of appends complete while the subscriber reads nothing; it buffers nothing.
    for n in 0..3000 {
        store
            .append("s", ExpectedVersion::Any, [common::event("s", n)])
            .unwrap();
    }
    assert_eq!(std::mem::size_of_val(&stalled), before);
    // When it wakes up, it still gets everything, in order.
    let all = take(&mut stalled, 3000);
    for (n, ev) in (0u64..).zip(&all) {
        common::assert_event(ev, "s", n, n, n);
    }
}

#[test]
fn checkpoint_names_are_checked_and_damage_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for bad in ["", "../escape", ".hidden", "a/b", &"x".repeat(129)] {
        assert!(
            matches!(
                store.save_checkpoint(bad, 1),
                Err(annals::Error::InvalidInput(_))
            ),
            "{bad:?}"
        );
    }
    store.save_checkpoint("ok", 5).unwrap();
    store.save_checkpoint("ok", 6).unwrap();
    assert_eq!(store.checkpoint("ok").unwrap(), Some(6));
    let path = dir.path().join("checkpoints/ok");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[9] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        store.checkpoint("ok"),
        Err(annals::Error::Corrupt { .. })
    ));
}
