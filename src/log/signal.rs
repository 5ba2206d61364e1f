//! [`CommitSignal`]: how the writer tells readers that new events are committed, without
//! polling.

use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Wakes subscribers when the writer publishes new events.
#[derive(Debug)]
pub(crate) struct CommitSignal {
    next_position: Mutex<u64>,
    changed: Condvar,
    /// Tasks waiting for new events (async subscriptions), each woken once by the next
    /// publish.
    wakers: Mutex<Vec<Waker>>,
}

impl CommitSignal {
    /// A signal whose positions below `next_position` are committed.
    pub fn new(next_position: u64) -> Self {
        CommitSignal {
            next_position: Mutex::new(next_position),
            changed: Condvar::new(),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// Records that positions below `next_position` are committed and wakes every waiter.
    pub fn publish(&self, next_position: u64) {
        *self.next_position.lock() = next_position;
        self.changed.notify_all();
        let wakers = std::mem::take(&mut *self.wakers.lock());
        for waker in wakers {
            waker.wake();
        }
    }

    /// Has `waker` woken by the next publish, unless a position at or after `position` is
    /// committed already (then returns `true` and registers nothing). For async
    /// subscriptions (feature `async`).
    #[cfg(feature = "async")]
    pub fn wake_beyond(&self, position: u64, waker: &Waker) -> bool {
        let next = self.next_position.lock();
        if *next > position {
            return true;
        }
        // Under the position's lock: a publish after the check wakes this waker.
        let mut wakers = self.wakers.lock();
        if !wakers.iter().any(|w| w.will_wake(waker)) {
            wakers.push(waker.clone());
        }
        false
    }

    /// Waits until a position at or after `position` is committed, or until `deadline`.
    /// Returns whether one is.
    pub fn wait_beyond(&self, position: u64, deadline: Option<Instant>) -> bool {
        let mut next = self.next_position.lock();
        while *next <= position {
            match deadline {
                Some(deadline) => {
                    if self.changed.wait_until(&mut next, deadline).timed_out() {
                        return *next > position;
                    }
                }
                None => self.changed.wait(&mut next),
            }
        }
        true
    }
}
