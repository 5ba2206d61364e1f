//! Feature `async`: subscriptions as `futures_core::Stream`s under tokio, woken by commits.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use annals::{EventData, ExpectedVersion, RecordedEvent, Store, Subscription};
use futures_core::Stream;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn ev(n: u64) -> EventData {
    EventData::new(
        if n.is_multiple_of(3) { "Fizz" } else { "Plain" },
        n.to_le_bytes().to_vec(),
    )
}

/// The next item of the stream, counting the polls it took.
async fn next_counted(
    sub: &mut Subscription,
    polls: &AtomicUsize,
) -> annals::Result<RecordedEvent> {
    let mut sub = Pin::new(sub);
    poll_fn(|cx| {
        polls.fetch_add(1, Ordering::Relaxed);
        sub.as_mut().poll_next(cx)
    })
    .await
    .expect("a subscription never ends")
}

#[test]
fn a_stream_catches_up_then_follows_live_appends_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for n in 0..100 {
        store
            .append(&format!("s-{}", n % 7), ExpectedVersion::Any, [ev(n)])
            .unwrap();
    }
    runtime().block_on(async {
        let mut all = store.subscribe_all(0);
        let mut fizz = store.subscribe_all(0).event_types(["Fizz"]);
        let appender = {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 100..1_100u64 {
                    store
                        .append_async(&format!("s-{}", n % 7), ExpectedVersion::Any, [ev(n)])
                        .await
                        .unwrap();
                    if n.is_multiple_of(100) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            })
        };
        let polls = AtomicUsize::new(0);
        for n in 0..1_100u64 {
            let e = next_counted(&mut all, &polls).await.unwrap();
            assert_eq!((e.position(), e.payload()), (n, &n.to_le_bytes()[..]));
        }
        for n in (0..1_100u64).filter(|n| n.is_multiple_of(3)) {
            let e = fizz.next_async().await.unwrap();
            assert_eq!((e.position(), e.event_type()), (n, "Fizz"));
        }
        appender.await.unwrap();
    });
}

#[test]
fn a_waiting_stream_is_woken_by_a_commit_not_polled() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    runtime().block_on(async {
        let polls = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (store, polls) = (store.clone(), Arc::clone(&polls));
            tokio::spawn(async move {
                let mut sub = store.subscribe_stream("late", 0);
                next_counted(&mut sub, &polls).await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Parked all that time: polled once (maybe twice, if a commit of another stream came).
        assert!(
            polls.load(Ordering::Relaxed) <= 2,
            "{} polls",
            polls.load(Ordering::Relaxed)
        );
        store
            .append("other", ExpectedVersion::Any, [ev(1)])
            .unwrap();
        store.append("late", ExpectedVersion::Any, [ev(2)]).unwrap();
        let got = waiter.await.unwrap().unwrap();
        assert_eq!((got.stream(), got.position()), ("late", 1));
        assert!(polls.load(Ordering::Relaxed) <= 4);
    });
}

#[test]
fn a_cancelled_wait_leaves_the_subscription_usable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    runtime().block_on(async {
        let mut sub = store.subscribe_all(0);
        let timed_out = tokio::time::timeout(Duration::from_millis(50), sub.next_async()).await;
        assert!(timed_out.is_err(), "nothing to deliver yet");
        store
            .append_async("a", ExpectedVersion::Any, [ev(7)])
            .await
            .unwrap();
        let e = tokio::time::timeout(Duration::from_secs(10), sub.next_async())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(e.payload(), 7u64.to_le_bytes());
    });
}

#[test]
fn a_read_only_stream_is_woken_by_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.append("a", ExpectedVersion::Any, [ev(0)]).unwrap();
    let reader = Store::open_read_only(dir.path()).unwrap();
    runtime().block_on(async {
        let follower = {
            let reader = reader.clone();
            tokio::spawn(async move {
                let mut sub = reader.subscribe_all(0);
                let first = sub.next_async().await.unwrap().position();
                let second = sub.next_async().await.unwrap().position();
                (first, second)
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        store.append("a", ExpectedVersion::Any, [ev(1)]).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!follower.is_finished(), "the reader has not refreshed yet");
        reader.refresh().unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), follower)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, (0, 1));
    });
}

/// A waker that panics when woken.
struct Panicking;

impl std::task::Wake for Panicking {
    fn wake(self: Arc<Self>) {
        panic!("a subscriber's waker that panics");
    }
}

#[test]
fn a_subscribers_waker_that_panics_does_not_fail_the_append_that_woke_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // One subscription waits with a waker that panics, another under tokio.
    let mut bad = store.subscribe_all(0);
    let waker = std::task::Waker::from(Arc::new(Panicking));
    assert!(Pin::new(&mut bad)
        .poll_next(&mut std::task::Context::from_waker(&waker))
        .is_pending());
    runtime().block_on(async {
        let waiting = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .subscribe_all(0)
                    .next_async()
                    .await
                    .map(|e| e.position())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The append that wakes both succeeds, the tokio one is woken, the store goes on.
        store.append("a", ExpectedVersion::Any, [ev(0)]).unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(10), waiting)
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
            0
        );
        store
            .append_async("a", ExpectedVersion::Any, [ev(1)])
            .await
            .unwrap();
    });
    store.append("a", ExpectedVersion::Any, [ev(2)]).unwrap();
    assert_eq!(store.stream_version("a"), Some(2));
    // Many subscriptions waiting and dropped leave nothing behind: each registers once.
    runtime().block_on(async {
        for _ in 0..1_000 {
            let mut sub = store.subscribe_all(3);
            assert!(
                tokio::time::timeout(Duration::from_millis(1), sub.next_async())
                    .await
                    .is_err()
            );
        }
    });
}
