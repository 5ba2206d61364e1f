//! Group commit: many threads append at once; one of them (the leader) takes every append
//! waiting at that moment and has the writer commit them with one `write` and one
//! `fdatasync`, while the appends that arrive meanwhile gather for the next batch. Each caller
//! is woken when its own append's batch is durable (or has failed).
//!
//! The idea is okaywal's: no dedicated thread; a caller that finds no leader becomes the
//! leader. Wake-ups are targeted: when a batch is done the leader puts each result in its
//! caller's own slot and unparks exactly the callers of that batch, plus the first caller
//! waiting for the next batch (to lead it). Waking every waiter instead (a condition
//! variable's `notify_all`) and handing results back through the shared queue lock spent most
//! of the time of 64 appending threads on two cores in context switches.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::Thread;

use parking_lot::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::event::AppendResult;
use crate::write::validate::Request;
use crate::write::writer::Writer;

/// Where a caller's result is put.
type Slot = Arc<Mutex<Option<Result<AppendResult>>>>;

#[derive(Debug, Default)]
struct Queue {
    /// Appends waiting for the next batch, and their callers.
    waiting: Vec<Request>,
    callers: Vec<(Slot, Thread)>,
    /// A leader is committing a batch.
    leading: bool,
}

/// The group-commit queue in front of the writer.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    writer: Mutex<Writer>,
}

impl GroupCommit {
    pub fn new(writer: Writer) -> Self {
        GroupCommit {
            queue: Mutex::new(Queue::default()),
            writer: Mutex::new(writer),
        }
    }

    /// The writer, for work outside group commit (sync, stats). Held by a leader while it
    /// commits a batch.
    pub fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock()
    }

    /// Queues `requests` together (one batch takes them all, in order), waits until they are
    /// committed, and returns their results in order.
    pub fn append(&self, requests: Vec<Request>) -> Vec<Result<AppendResult>> {
        let slots: Vec<Slot> = requests
            .iter()
            .map(|_| Arc::new(Mutex::new(None)))
            .collect();
        {
            let mut queue = self.queue.lock();
            queue.waiting.extend(requests);
            let me = std::thread::current();
            queue
                .callers
                .extend(slots.iter().map(|slot| (Arc::clone(slot), me.clone())));
        }
        let mut results = Vec::with_capacity(slots.len());
        for slot in &slots {
            loop {
                if let Some(result) = slot.lock().take() {
                    results.push(result);
                    break;
                }
                if !self.lead_if_free() {
                    // Unparked when this append's batch is done or this caller is to lead; a
                    // stray unpark only makes it look again.
                    std::thread::park();
                }
            }
        }
        results
    }

    /// If no batch is being committed, commits every waiting append and wakes their callers
    /// and the next leader. Returns whether it did.
    fn lead_if_free(&self) -> bool {
        let (batch, callers) = {
            let mut queue = self.queue.lock();
            if queue.leading || queue.waiting.is_empty() {
                return false;
            }
            queue.leading = true;
            (
                std::mem::take(&mut queue.waiting),
                std::mem::take(&mut queue.callers),
            )
        };
        let mut results = Vec::with_capacity(batch.len());
        // A bug that panics in the writer must not leave every later append waiting for a
        // leader that never steps down: the appends of the batch not yet published fail and
        // the writer refuses further writes.
        let committed = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.writer.lock().commit(&batch, &mut results);
        }));
        if committed.is_err() {
            let cause = "internal error: the writer panicked".to_string();
            let published = self.writer.lock().poison_after_panic(&cause);
            results.truncate(published);
            results.resize_with(batch.len(), || {
                Err(Error::Poisoned {
                    cause: cause.clone(),
                })
            });
        }
        for ((slot, _), result) in callers.iter().zip(results) {
            *slot.lock() = Some(result);
        }
        let next_leader = {
            let mut queue = self.queue.lock();
            queue.leading = false;
            queue.callers.first().map(|(_, thread)| thread.clone())
        };
        let me = std::thread::current().id();
        for (_, thread) in &callers {
            if thread.id() != me {
                thread.unpark();
            }
        }
        if let Some(thread) = next_leader {
            thread.unpark();
        }
        true
    }
}
