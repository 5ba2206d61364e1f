//! [`CommitSignal`]: how the writer tells readers that new events are committed, without
//! polling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Wakes subscribers when the writer publishes new events: threads waiting on a condition
/// variable, and tasks (async subscriptions) by their wakers.
#[derive(Debug)]
pub(crate) struct CommitSignal {
    next_position: Mutex<u64>,
    changed: Condvar,
    /// The waker of each subscription waiting as a task, by subscription: woken once by
    /// [`CommitSignal::wake_tasks`] after the next publish; forgotten when it is dropped.
    tasks: Mutex<HashMap<u64, Waker>>,
    /// The next subscription's number.
    next_id: AtomicU64,
}

impl CommitSignal {
    /// A signal whose positions below `next_position` are committed.
    pub fn new(next_position: u64) -> Self {
        CommitSignal {
            next_position: Mutex::new(next_position),
            changed: Condvar::new(),
            tasks: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }

    /// Records that positions below `next_position` are committed and wakes every waiting
    /// thread. Tasks are woken by [`CommitSignal::wake_tasks`], which the publisher calls
    /// once it holds no lock (a waker may run arbitrary code, even the task itself).
    pub fn publish(&self, next_position: u64) {
        *self.next_position.lock() = next_position;
        self.changed.notify_all();
    }

    /// Wakes the tasks waiting for a publish. A waker that panics is skipped; the others are
    /// woken all the same.
    pub fn wake_tasks(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for (_, waker) in tasks {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()));
        }
    }

    /// A number for a new subscription, to register its waker under.
    pub fn subscription_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Has `waker` woken after the next publish, as subscription `id`'s (replacing the one it
    /// registered before), unless a position at or after `position` is committed already:
    /// then returns `true` and registers nothing. For async subscriptions (feature `async`).
    #[cfg(feature = "async")]
    pub fn wake_beyond(&self, id: u64, position: u64, waker: &Waker) -> bool {
        let next = self.next_position.lock();
        if *next > position {
            return true;
        }
        // Under the position's lock: a publish after the check is followed by a wake_tasks
        // that finds this waker.
        let mut tasks = self.tasks.lock();
        match tasks.get_mut(&id) {
            Some(w) if w.will_wake(waker) => {}
            Some(w) => w.clone_from(waker),
            None => {
                tasks.insert(id, waker.clone());
            }
        }
        false
    }

    /// Forgets subscription `id`'s waker (the subscription is gone).
    pub fn forget(&self, id: u64) {
        self.tasks.lock().remove(&id);
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
