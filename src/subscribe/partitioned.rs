//! [`PartitionedSubscription`]: a subscription whose events are handled by several worker
//! threads, the events of one key by one worker in position order, with one durable
//! checkpoint that never passes an event some worker has not finished (at-least-once).
//!
//! A coordinator thread follows the log (catching up, then waiting for new commits) and
//! dispatches each event to its worker's bounded queue. Each worker publishes how many events
//! it finished and the position after the last one. The checkpoint is the smallest of: the
//! position the coordinator has dispatched up to, and, for each worker with events pending,
//! the position of its oldest pending event as far as known (the later of the position it
//! last finished after and the position of the event that made it busy); it only grows, and
//! it is saved every 100 ms and when the subscription stops.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Subscription;
use crate::error::{Error, Result};
use crate::event::RecordedEvent;

/// Events queued for each worker before the coordinator waits.
const QUEUED: usize = 1024;
/// How often the checkpoint is saved while events flow.
const SAVE_EVERY: Duration = Duration::from_millis(100);

/// What the threads share with the handle.
#[derive(Debug, Default)]
struct Shared {
    stop: AtomicBool,
    handled: AtomicU64,
    saved: AtomicU64,
    failure: Mutex<Option<String>>,
}

/// A running partitioned subscription: see
/// [`Store::subscribe_partitioned`](crate::Store::subscribe_partitioned). Dropping it stops
/// it as [`PartitionedSubscription::stop`] does.
#[derive(Debug)]
pub struct PartitionedSubscription {
    shared: Arc<Shared>,
    coordinator: Option<JoinHandle<()>>,
}

/// One worker as the coordinator sees it.
struct Worker {
    queue: std::sync::mpsc::SyncSender<RecordedEvent>,
    thread: JoinHandle<()>,
    /// Events sent to it.
    sent: u64,
    /// Events it finished, and the position after the last one.
    done: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    /// The position of the event that made it busy (sent while it had nothing pending).
    busy_since: u64,
}

impl PartitionedSubscription {
    /// Starts following `sub` (which starts at the checkpoint) on `workers` threads.
    pub(crate) fn start<K: Hash>(
        mut sub: Subscription,
        workers: usize,
        key: impl Fn(&RecordedEvent) -> K + Send + 'static,
        handler: impl Fn(usize, &RecordedEvent) + Send + Sync + 'static,
        save: impl Fn(u64) -> Result<()> + Send + 'static,
    ) -> Result<Self> {
        if workers == 0 {
            return Err(Error::InvalidInput(
                "subscribe_partitioned needs at least one worker".into(),
            ));
        }
        let shared = Arc::new(Shared::default());
        shared
            .saved
            .store(Subscription::position(&sub), Ordering::Relaxed);
        let handler = Arc::new(handler);
        let mut pool = Vec::with_capacity(workers);
        for w in 0..workers {
            let (queue, receive) = sync_channel::<RecordedEvent>(QUEUED);
            let (done, finished) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let (d, f, h) = (
                Arc::clone(&done),
                Arc::clone(&finished),
                Arc::clone(&handler),
            );
            let thread = std::thread::Builder::new()
                .name(format!("annals-partition-{w}"))
                .spawn(move || {
                    for ev in receive {
                        h(w, &ev);
                        f.store(ev.position() + 1, Ordering::Release);
                        d.fetch_add(1, Ordering::Release);
                    }
                })
                .map_err(|e| Error::InvalidInput(format!("cannot start a worker thread: {e}")))?;
            pool.push(Worker {
                queue,
                thread,
                sent: 0,
                done,
                finished,
                busy_since: 0,
            });
        }
        let s = Arc::clone(&shared);
        let coordinator = std::thread::Builder::new()
            .name("annals-partitions".into())
            .spawn(move || coordinate(&mut sub, pool, &key, &save, &s))
            .map_err(|e| Error::InvalidInput(format!("cannot start a thread: {e}")))?;
        Ok(PartitionedSubscription {
            shared,
            coordinator: Some(coordinator),
        })
    }

    /// Events handled so far.
    pub fn handled(&self) -> u64 {
        self.shared.handled.load(Ordering::Relaxed)
    }

    /// The checkpoint last saved: every event below it was handled.
    pub fn checkpoint(&self) -> u64 {
        self.shared.saved.load(Ordering::Relaxed)
    }

    /// Stops following the log, lets the workers finish what they were given, saves the
    /// checkpoint and returns it; the error of a failed save or read, or of a handler that
    /// panicked, if there was one.
    pub fn stop(mut self) -> Result<u64> {
        self.halt();
        match self.shared.failure.lock().take() {
            Some(failure) => Err(Error::InvalidInput(failure)),
            None => Ok(self.checkpoint()),
        }
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.coordinator.take() {
            if thread.join().is_err() {
                *self.shared.failure.lock() = Some("the coordinator thread panicked".into());
            }
        }
    }
}

impl Drop for PartitionedSubscription {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The coordinator: follows the log, dispatches, saves the checkpoint.
fn coordinate<K: Hash>(
    sub: &mut Subscription,
    mut pool: Vec<Worker>,
    key: &impl Fn(&RecordedEvent) -> K,
    save: &impl Fn(u64) -> Result<()>,
    shared: &Shared,
) {
    let mut last_save = Instant::now();
    let mut failure = None;
    while !shared.stop.load(Ordering::Relaxed) {
        match sub.next_timeout(Duration::from_millis(20)) {
            Ok(Some(ev)) => {
                let mut hasher = DefaultHasher::new();
                key(&ev).hash(&mut hasher);
                let n = pool.len() as u64;
                let worker = &mut pool[(hasher.finish() % n) as usize];
                if worker.sent == worker.done.load(Ordering::Acquire) {
                    worker.busy_since = ev.position();
                }
                worker.sent += 1;
                if worker.queue.send(ev).is_err() {
                    failure = Some("a handler panicked".to_string());
                    break;
                }
            }
            Ok(None) => {}
            Err(e) => {
                failure = Some(format!("reading the log: {e}"));
                break;
            }
        }
        if last_save.elapsed() >= SAVE_EVERY {
            last_save = Instant::now();
            if let Err(e) = save_watermark(sub, &pool, save, shared) {
                failure = Some(format!("saving the checkpoint: {e}"));
                break;
            }
        }
    }
    // Let the workers finish what they were given, then save where everything ends.
    let mut panicked = false;
    let mut idle = Vec::with_capacity(pool.len());
    for w in pool {
        drop(w.queue);
        panicked |= w.thread.join().is_err();
        idle.push((w.sent, w.done, w.finished, w.busy_since));
    }
    shared.handled.store(
        idle.iter().map(|w| w.1.load(Ordering::Acquire)).sum(),
        Ordering::Relaxed,
    );
    if panicked {
        failure.get_or_insert_with(|| "a handler panicked".to_string());
    } else if failure.is_none() {
        let end = Subscription::position(sub);
        if end > shared.saved.load(Ordering::Relaxed) {
            match save(end) {
                Ok(()) => shared.saved.store(end, Ordering::Relaxed),
                Err(e) => failure = Some(format!("saving the checkpoint: {e}")),
            }
        }
    }
    if failure.is_some() {
        *shared.failure.lock() = failure;
    }
}

/// Saves the checkpoint if it moved: below every pending event, and below what has not
/// been dispatched.
fn save_watermark(
    sub: &Subscription,
    pool: &[Worker],
    save: &impl Fn(u64) -> Result<()>,
    shared: &Shared,
) -> Result<()> {
    let mut mark = Subscription::position(sub);
    let mut handled = 0;
    for w in pool {
        let done = w.done.load(Ordering::Acquire);
        handled += done;
        if w.sent > done {
            let oldest = w.busy_since.max(w.finished.load(Ordering::Acquire));
            mark = mark.min(oldest);
        }
    }
    shared.handled.store(handled, Ordering::Relaxed);
    if mark > shared.saved.load(Ordering::Relaxed) {
        save(mark)?;
        shared.saved.store(mark, Ordering::Relaxed);
    }
    Ok(())
}
