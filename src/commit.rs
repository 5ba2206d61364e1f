//! Group commit: many threads append at once; one of them (the leader) takes every append
//! waiting at that moment and has the writer commit them with one `write` and one
//! `fdatasync`, while the appends that arrive meanwhile gather for the next batch. Each caller
//! is woken when its own append's batch is durable (or has failed).
//!
//! The idea is okaywal's: no dedicated thread; a caller that finds no leader becomes the
//! leader. Wake-ups are targeted: when a batch is done the leader unparks exactly the callers
//! of that batch, plus the first caller waiting for the next batch (to lead it). Waking every
//! waiter instead (a condition variable's `notify_all`) spent most of the time of 64
//! appending threads on two cores in context switches.

use std::collections::HashMap;
use std::thread::Thread;

use parking_lot::{Mutex, MutexGuard};

use crate::error::Result;
use crate::event::AppendResult;
use crate::writer::{Request, Writer};

#[derive(Debug, Default)]
struct Queue {
    /// Appends waiting for the next batch, and their callers with their tickets.
    waiting: Vec<Request>,
    callers: Vec<(u64, Thread)>,
    next_ticket: u64,
    /// Results not yet picked up by their callers, by ticket.
    done: HashMap<u64, Result<AppendResult>>,
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

    /// Queues `request`, waits until its batch is committed, and returns its result.
    pub fn append(&self, request: Request) -> Result<AppendResult> {
        let mut queue = self.queue.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push(request);
        queue.callers.push((ticket, std::thread::current()));
        loop {
            if let Some(result) = queue.done.remove(&ticket) {
                return result;
            }
            if queue.leading {
                // Parked until this append's batch is done or this caller is to lead; a stray
                // unpark only makes it look again.
                MutexGuard::unlocked(&mut queue, std::thread::park);
                continue;
            }
            queue.leading = true;
            let batch = std::mem::take(&mut queue.waiting);
            let callers = std::mem::take(&mut queue.callers);
            let mut results = Vec::with_capacity(batch.len());
            MutexGuard::unlocked(&mut queue, || {
                self.writer.lock().commit(&batch, &mut results);
            });
            queue
                .done
                .extend(callers.iter().map(|(t, _)| *t).zip(results));
            queue.leading = false;
            let next_leader = queue.callers.first().map(|(_, thread)| thread.clone());
            MutexGuard::unlocked(&mut queue, || {
                for (t, thread) in &callers {
                    if *t != ticket {
                        thread.unpark();
                    }
                }
                if let Some(thread) = next_leader {
                    thread.unpark();
                }
            });
        }
    }
}
