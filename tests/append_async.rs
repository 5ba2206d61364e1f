//! `Store::append_async`: thousands of futures from one thread on the test's own executor,
//! their results against the log, cancellation, sync and async appenders together, errors,
//! and tokio.

mod common;

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use annals::{Error, EventData, ExpectedVersion, Options, Store};
use common::executor::{block_on, run_all};
use common::{assert_event, event, read_everything};

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future>(future: &mut std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
}

/// Checks that every stream of `store` has dense versions from 0 and returns the events per
/// stream.
fn dense_streams(store: &Store) -> HashMap<String, u64> {
    let mut next: HashMap<String, u64> = HashMap::new();
    for ev in read_everything(store) {
        let v = next.entry(ev.stream().to_string()).or_default();
        assert_eq!(ev.version(), *v, "{} at {}", ev.stream(), ev.position());
        *v += 1;
    }
    next
}

#[test]
fn thousands_of_futures_from_one_thread_match_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    const N: u64 = 5_000;
    let stream = |i: u64| format!("s-{}", i % 50);
    let futures: Vec<_> = (0..N)
        .map(|i| store.append_async(&stream(i), ExpectedVersion::Any, [event(&stream(i), i)]))
        .collect();
    let (results, polls) = run_all(futures);
    // Each future is polled when queued and when woken, not in a loop.
    assert!(polls <= 3 * N as usize, "{polls} polls for {N} futures");
    let log = read_everything(&store);
    assert_eq!(log.len() as u64, N);
    let mut positions: Vec<u64> = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        let r = result.unwrap();
        assert_eq!(
            (r.first_position, r.first_version),
            (r.last_position, r.last_version)
        );
        let i = i as u64;
        assert_event(
            &log[r.first_position as usize],
            &stream(i),
            i,
            r.first_position,
            r.first_version,
        );
        positions.push(r.first_position);
    }
    positions.sort_unstable();
    assert_eq!(positions, (0..N).collect::<Vec<_>>());
    assert_eq!(dense_streams(&store).len(), 50);
    // Durable as the blocking append is: all of it there after a reopen.
    drop(store);
    assert_eq!(
        read_everything(&Store::open(dir.path()).unwrap()).len() as u64,
        N
    );
}

#[test]
fn futures_queued_in_order_see_each_others_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Ten appends to one stream, each expecting the one before: polled in order, they are
    // queued in order and all succeed.
    let chain: Vec<_> = (0..10u64)
        .map(|v| {
            let expected = v
                .checked_sub(1)
                .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            store.append_async("chain", expected, [event("chain", v)])
        })
        .collect();
    let (results, _) = run_all(chain);
    for (v, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap().first_version, v as u64);
    }
    // A hundred appends all expecting version 9: one wins, the others get the error.
    let racing: Vec<_> = (0..100u64)
        .map(|n| store.append_async("chain", ExpectedVersion::Exact(9), [event("chain", 10 + n)]))
        .collect();
    let (results, _) = run_all(racing);
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1);
    for r in results.into_iter().filter_map(Result::err) {
        assert!(
            matches!(&r, Error::WrongExpectedVersion { stream, actual: Some(10), .. } if stream == "chain"),
            "{r}"
        );
    }
    assert_eq!(dense_streams(&store)["chain"], 11);
}

#[test]
fn a_future_dropped_before_its_first_poll_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let never = store.append_async("a", ExpectedVersion::Any, [event("a", 0)]);
    drop(never);
    let r = store
        .append("b", ExpectedVersion::Any, [event("b", 1)])
        .unwrap();
    assert_eq!(r.first_position, 0);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stream_version("a"), None);
    assert_eq!(read_everything(&store).len(), 1);
}

#[test]
fn futures_dropped_after_their_first_poll_are_committed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Each append of three events: queued by one poll, then abandoned.
    for i in 0..1_000u64 {
        let s = format!("s-{i}");
        let mut future = pin!(store.append_async(
            &s,
            ExpectedVersion::NoStream,
            (0..3).map(|k| event(&s, i * 3 + k))
        ));
        // Queued; the result may already be in (a batch can finish between two lines).
        let _ = poll_once(&mut future);
    }
    // Closing right away commits what is still queued before the writer closes.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let streams = dense_streams(&store);
    assert_eq!(streams.len(), 1_000);
    assert!(streams.values().all(|&n| n == 3), "every append whole");
}

#[test]
fn sync_and_async_appenders_together() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = &store;
            s.spawn(move || {
                let stream = format!("sync-{t}");
                for v in 0..300u64 {
                    let expected = v
                        .checked_sub(1)
                        .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                    store
                        .append(&stream, expected, [event(&stream, v)])
                        .unwrap();
                }
            });
        }
        // Meanwhile this thread keeps 2,000 async appends to 20 streams going, in rounds.
        for round in 0..100u64 {
            let futures: Vec<_> = (0..20u64)
                .map(|k| {
                    let stream = format!("async-{k}");
                    let expected = round
                        .checked_sub(1)
                        .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                    store.append_async(&stream, expected, [event(&stream, round)])
                })
                .collect();
            for r in run_all(futures).0 {
                assert_eq!(r.unwrap().first_version, round);
            }
        }
    });
    let streams = dense_streams(&store);
    assert_eq!(streams.len(), 24);
    assert!(streams
        .iter()
        .all(|(s, &n)| n == if s.starts_with("sync") { 300 } else { 100 }));
}

#[test]
fn bad_input_and_read_only_handles_fail_at_the_first_poll() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let empty = block_on(store.append_async("", ExpectedVersion::Any, [event("x", 0)]));
    assert!(matches!(empty, Err(Error::InvalidInput(_))), "{empty:?}");
    let none = block_on(store.append_async("x", ExpectedVersion::Any, Vec::<EventData>::new()));
    assert!(matches!(none, Err(Error::InvalidInput(_))), "{none:?}");
    let small = Store::open_with(
        tempfile::tempdir().unwrap().path(),
        Options::default().max_event_size(64),
    )
    .unwrap();
    let big = block_on(small.append_async(
        "x",
        ExpectedVersion::Any,
        [EventData::new("T", vec![0; 100])],
    ));
    assert!(matches!(big, Err(Error::InvalidInput(_))), "{big:?}");
    let ro = Store::open_read_only(dir.path()).unwrap();
    let refused = block_on(ro.append_async("x", ExpectedVersion::Any, [event("x", 0)]));
    assert!(
        matches!(refused, Err(Error::ReadOnly { .. })),
        "{refused:?}"
    );
    assert_eq!(read_everything(&store).len(), 0);
    // Polled again after it completed: an error, not a panic.
    let mut done = pin!(store.append_async("x", ExpectedVersion::Any, [event("x", 0)]));
    while poll_once(&mut done).is_pending() {
        std::thread::yield_now();
    }
    assert!(matches!(
        poll_once(&mut done),
        Poll::Ready(Err(Error::InvalidInput(_)))
    ));
}

#[test]
fn tokio_tasks_on_both_runtimes() {
    for multi_thread in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let runtime = if multi_thread {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
        } else {
            tokio::runtime::Builder::new_current_thread().build()
        }
        .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..50u64)
                .map(|t| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        let stream = format!("task-{t}");
                        for v in 0..20u64 {
                            let expected = v
                                .checked_sub(1)
                                .map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                            let r = store
                                .append_async(&stream, expected, [event(&stream, v)])
                                .await?;
                            assert_eq!(r.first_version, v);
                        }
                        Ok::<_, Error>(())
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        });
        let streams = dense_streams(&store);
        assert_eq!((streams.len(), streams.values().sum::<u64>()), (50, 1_000));
    }
}

/// A waker that panics when woken, counting its wakes.
struct Panicking(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Panicking {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        panic!("a waker that panics");
    }
}

#[test]
fn a_waker_that_panics_poisons_nothing_and_strands_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let panicking = std::sync::Arc::new(Panicking(Default::default()));
    let waker = Waker::from(std::sync::Arc::clone(&panicking));
    let mut cx = Context::from_waker(&waker);
    // Queued with the panicking waker, then left: the committer wakes it, it panics.
    let mut future = Box::pin(store.append_async("a", ExpectedVersion::Any, [event("a", 0)]));
    assert!(future.as_mut().poll(&mut cx).is_pending());
    for i in 1..=200u64 {
        let r = block_on(store.append_async("a", ExpectedVersion::Any, [event("a", i)])).unwrap();
        assert_eq!(r.first_version, i);
    }
    store
        .append("b", ExpectedVersion::Any, [event("b", 0)])
        .unwrap();
    assert_eq!(panicking.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(matches!(future.as_mut().poll(&mut cx), Poll::Ready(Ok(r)) if r.first_version == 0));
    assert_eq!(dense_streams(&store)["a"], 201);
}

/// A waker that owns the last handle on the store: waking it closes the store.
struct Owning(std::sync::Mutex<Option<Store>>);

impl std::task::Wake for Owning {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.lock().unwrap().take();
    }
}

#[test]
fn the_last_handle_dropped_by_a_waker_on_the_committer_closes_the_store_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let owning = std::sync::Arc::new(Owning(std::sync::Mutex::new(Some(store.clone()))));
    let waker = Waker::from(std::sync::Arc::clone(&owning));
    {
        let mut future = Box::pin(store.append_async("a", ExpectedVersion::Any, [event("a", 0)]));
        assert!(future
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_pending());
        drop(waker);
        drop(owning);
        drop(store);
        // The future still holds a handle; dropping it leaves the waker's as the last.
    }
    // The committer commits, wakes the waker, which drops the last handle on that thread:
    // the store closes there (no self-join), and its directory unlocks after the writer.
    let started = std::time::Instant::now();
    let store = loop {
        match Store::open(dir.path()) {
            Ok(store) => break store,
            Err(Error::Locked { .. }) if started.elapsed() < std::time::Duration::from_secs(20) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(store.stream_version("a"), Some(0));
    assert!(
        store.open_report().cut.is_none(),
        "closed cleanly, nothing cut"
    );
}
