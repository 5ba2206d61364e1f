//! The background thread that syncs the tail segment under [`Durability::Buffered`], and
//! raises the durable position once each sync returns.
//!
//! Every `fdatasync` of the tail under `Buffered`, the writer's own included (roll, `sync`,
//! close), goes through [`Flusher::sync`]: one at a time, and never after one has failed. Linux
//! reports a write-back error once per file, so a second `fdatasync` after a failed one would
//! return success for pages that never reached the disk.
//!
//! [`Durability::Buffered`]: crate::Durability::Buffered

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::fs::segment::Segment;

#[derive(Debug)]
struct State {
    /// The tail segment.
    segment: Arc<Segment>,
    /// Bytes were written since the last sync.
    dirty: bool,
    /// Position after the last event written to `segment`: what a sync started now covers.
    written: u64,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Every position below it is on stable storage (shared with the writer).
    durable: Arc<AtomicU64>,
    /// Held during every `fdatasync`, so that they run one at a time.
    syncing: Mutex<()>,
    /// The first failed sync; the writer turns it into a poisoned store.
    failure: Mutex<Option<String>>,
}

impl Shared {
    /// Syncs `segment` unless a sync failed before; on success every event below `covers` is
    /// durable.
    fn sync(&self, segment: &Segment, covers: u64) -> Result<()> {
        let _one_at_a_time = self.syncing.lock();
        if let Some(cause) = self.failure.lock().clone() {
            return Err(Error::Poisoned { cause });
        }
        match segment.sync_data() {
            Ok(()) => {
                self.durable.fetch_max(covers, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                *self.failure.lock() = Some(format!("fdatasync failed: {e}"));
                Err(e)
            }
        }
    }
}

/// Handle on the flush thread; dropping it stops the thread (after one last sync).
#[derive(Debug)]
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts a thread that syncs `segment` at least every `interval` while it is dirty, and
    /// raises `durable` after each sync.
    pub fn start(
        interval: Duration,
        segment: Arc<Segment>,
        durable: Arc<AtomicU64>,
    ) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                segment,
                dirty: false,
                written: durable.load(Ordering::Acquire),
                stop: false,
            }),
            wake: Condvar::new(),
            durable,
            syncing: Mutex::new(()),
            failure: Mutex::new(None),
        });
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("annals-flush".into())
            .spawn(move || run(&for_thread, interval))
            .map_err(|e| Error::io("start flush thread", "annals-flush", e))?;
        Ok(Flusher {
            shared,
            thread: Some(thread),
        })
    }

    /// Notes that the events below `written` were written to the tail since the last sync.
    pub fn mark_dirty(&self, written: u64) {
        let mut state = self.shared.state.lock();
        state.dirty = true;
        state.written = written;
    }

    /// Switches to a new tail segment (the writer synced the old one through [`Flusher::sync`]).
    pub fn set_segment(&self, segment: Arc<Segment>) {
        self.shared.state.lock().segment = segment;
    }

    /// Syncs `segment` now, for the writer: fails if any sync failed before.
    pub fn sync(&self, segment: &Segment, covers: u64) -> Result<()> {
        self.shared.sync(segment, covers)
    }

    /// The first sync that failed, if any.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().clone()
    }

    /// Stops the thread after one last sync (if the tail is dirty) and waits for it.
    pub fn stop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic in the flush thread has nothing left to report here.
            let _ = thread.join();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(shared: &Shared, interval: Duration) {
    let mut state = shared.state.lock();
    loop {
        if !state.stop {
            shared.wake.wait_for(&mut state, interval);
        }
        if state.dirty {
            state.dirty = false;
            // The segment and the position it covers are taken together, under the lock; the
            // lock is not held during the `fdatasync`. A failure is kept in `shared`.
            let (segment, covers) = (Arc::clone(&state.segment), state.written);
            let _ = MutexGuard::unlocked(&mut state, || shared.sync(&segment, covers));
        }
        if state.stop {
            return;
        }
    }
}
