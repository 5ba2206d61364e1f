//! The background thread that syncs the tail segment under [`Durability::Buffered`].
//!
//! [`Durability::Buffered`]: crate::Durability::Buffered

use std::fs::File;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::{Error, Result};

#[derive(Debug)]
struct State {
    /// The tail segment's file.
    file: Arc<File>,
    /// Bytes were written since the last sync.
    dirty: bool,
    stop: bool,
    /// The first failed sync; the writer turns it into a poisoned store.
    failure: Option<String>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// Handle on the flush thread; dropping it syncs one last time and stops the thread.
#[derive(Debug)]
pub(crate) struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Flusher {
    /// Starts a thread that syncs `file` at least every `interval` while it is dirty.
    pub fn start(interval: Duration, file: File) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                file: Arc::new(file),
                dirty: false,
                stop: false,
                failure: None,
            }),
            wake: Condvar::new(),
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

    /// Notes that bytes were written to the tail since the last sync.
    pub fn mark_dirty(&self) {
        self.shared.state.lock().dirty = true;
    }

    /// Switches to a new tail segment (the writer synced the old one itself).
    pub fn set_file(&self, file: File) {
        self.shared.state.lock().file = Arc::new(file);
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
            sync(&mut state);
        }
        if state.stop {
            return;
        }
    }
}

/// Syncs the current file without holding the lock during the `fdatasync`.
fn sync(state: &mut MutexGuard<'_, State>) {
    let file = Arc::clone(&state.file);
    let result = MutexGuard::unlocked(state, || file.sync_data());
    if let Err(e) = result {
        state.failure = Some(format!("background fdatasync failed: {e}"));
    }
}
