//! Compaction on a background thread ([`Options::background_compaction`]): every interval it
//! runs [`compact`] at a bounded rate of I/O, sleeping between segments; it stops between two
//! segments when the store closes.
//!
//! [`Options::background_compaction`]: crate::Options::background_compaction

use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{compact, CompactReport, Maintainer, Pace};
use crate::error::{Error, Result};
use crate::options::BackgroundCompaction;

/// The background compaction thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Background {
    /// Dropped to stop the thread (it waits on the other end).
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    /// How the last run went.
    last: Arc<Mutex<Option<Result<CompactReport>>>>,
}

impl Background {
    /// Starts the thread.
    pub fn start(m: Maintainer, config: BackgroundCompaction) -> Result<Self> {
        let (stop, stopped) = channel();
        let last = Arc::new(Mutex::new(None));
        let shared = Arc::clone(&last);
        let dir = m.dir.clone();
        let thread = std::thread::Builder::new()
            .name("annals-compact".into())
            .spawn(move || run(&m, config, &stopped, &shared))
            .map_err(|e| Error::io("start the compaction thread", dir, e))?;
        Ok(Background {
            stop: Some(stop),
            thread: Some(thread),
            last,
        })
    }

    /// How the last run went, `None` before the first one ended.
    pub fn last(&self) -> Option<Result<CompactReport>> {
        self.last
            .lock()
            .as_ref()
            .map(|r| r.as_ref().cloned().map_err(Error::duplicate))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: waits `every`, compacts at the rate allowed, again, until told to stop.
fn run(
    m: &Maintainer,
    config: BackgroundCompaction,
    stopped: &Receiver<()>,
    last: &Mutex<Option<Result<CompactReport>>>,
) {
    loop {
        match stopped.recv_timeout(config.every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let _one_at_a_time = m.one_at_a_time.lock();
        let started = Instant::now();
        let mut bytes = 0u64;
        let mut going = true;
        let mut spent = |n: u64| {
            bytes += n;
            let due = Duration::from_secs_f64(bytes as f64 / config.max_bytes_per_sec as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                going = matches!(stopped.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
            }
            going
        };
        let pace = Pace {
            progress: &mut |_, _| {},
            spent: &mut spent,
        };
        let result = compact(m, pace);
        *last.lock() = Some(result);
        if !going {
            return;
        }
    }
}
