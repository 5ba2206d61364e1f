//! The background thread that syncs the tail segment under [`Durability::Buffered`], and
//! raises the durable position once each sync returns.
//!
//! [`Durability::Buffered`]: crate::Durability::Buffered

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::segment::Segment;

#[derive(Debug)]
struct State {
    /// The tail segment.
    segment: Arc<Segment>,
    /// Bytes were written since the last sync.
    dirty: bool,
    /// Position after the last event written to `segment`: what a sync started now covers.
    written: u64,
    stop: bool,
    /// The first failed sync; the writer turns it into a poisoned store.
    failure: Option<String>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Every position below it is on stable storage (shared with the writer).
    durable: Arc<AtomicU64>,
}

/// Handle on the flush thread; dropping it syncs one last time and stops the thread.
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
                failure: None,
            }),
            wake: Condvar::new(),
            durable,
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

    /// Switches to a new tail segment (the writer synced the old one itself).
    pub fn set_segment(&self, segment: Arc<Segment>) {
        self.shared.state.lock().segment = segment;
    }

    /// The first sync that failed, if any.
    pub fn failure(&self) -> Option<String> {
        self.shared.state.lock().failure.clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            // A panic in the flush thread has nothing left to report here.
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, interval: Duration) {
    let mut state = shared.state.lock();
    loop {
        if !state.stop {
            shared.wake.wait_for(&mut state, interval);
        }
        if state.dirty && state.failure.is_none() {
            state.dirty = false;
            sync(shared, &mut state);
        }
        if state.stop {
            return;
        }
    }
}

/// Syncs the current segment without holding the lock during the `fdatasync`; the segment and
/// the position it covers are taken together, under the lock.
fn sync(shared: &Shared, state: &mut MutexGuard<'_, State>) {
    let (segment, covers) = (Arc::clone(&state.segment), state.written);
    match MutexGuard::unlocked(state, || segment.sync_data()) {
        Ok(()) => {
            shared.durable.fetch_max(covers, Ordering::AcqRel);
        }
        Err(e) => state.failure = Some(format!("background fdatasync failed: {e}")),
    }
}
