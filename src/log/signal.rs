//! [`CommitSignal`]: how the writer tells readers that new events are committed, without
//! polling.

use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Wakes subscribers when the writer publishes new events.
#[derive(Debug)]
pub(crate) struct CommitSignal {
    next_position: Mutex<u64>,
    changed: Condvar,
}

impl CommitSignal {
    /// A signal whose positions below `next_position` are committed.
    pub fn new(next_position: u64) -> Self {
        CommitSignal {
            next_position: Mutex::new(next_position),
            changed: Condvar::new(),
        }
    }

    /// Records that positions below `next_position` are committed and wakes every waiter.
    pub fn publish(&self, next_position: u64) {
        *self.next_position.lock() = next_position;
        self.changed.notify_all();
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
