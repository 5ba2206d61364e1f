//! Group commit: many threads append at once; one of them (the leader) takes every append
//! waiting at that moment and has the writer commit them with one `write` and one
//! `fdatasync`, while the appends that arrive meanwhile gather for the next batch. Each caller
//! is woken when its own append's batch is durable (or has failed).
//!
//! The idea is okaywal's: no dedicated thread, the first waiter that finds no leader becomes
//! the leader; when its batch is done it steps down and wakes everyone, and a caller whose
//! append is still waiting takes over.

use std::collections::HashMap;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::error::Result;
use crate::event::AppendResult;
use crate::writer::{Request, Writer};

#[derive(Debug, Default)]
struct Queue {
    /// Appends waiting for the next batch, with their tickets.
    waiting: Vec<Request>,
    tickets: Vec<u64>,
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
    wake: Condvar,
    writer: Mutex<Writer>,
}

impl GroupCommit {
    pub fn new(writer: Writer) -> Self {
        GroupCommit {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            writer: Mutex::new(writer),
        }
    }

    /// The writer, for work outside group commit (sync, stats). Held only briefly by a leader
    /// between batches.
    pub fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock()
    }

    /// Queues `request`, waits until its batch is committed, and returns its result.
    pub fn append(&self, request: Request) -> Result<AppendResult> {
        let mut queue = self.queue.lock();
        let ticket = queue.next_ticket;
        queue.next_ticket += 1;
        queue.waiting.push(request);
        queue.tickets.push(ticket);
        loop {
            if let Some(result) = queue.done.remove(&ticket) {
                return result;
            }
            if queue.leading {
                self.wake.wait(&mut queue);
                continue;
            }
            queue.leading = true;
            let batch = std::mem::take(&mut queue.waiting);
            let tickets = std::mem::take(&mut queue.tickets);
            let mut results = Vec::with_capacity(batch.len());
            MutexGuard::unlocked(&mut queue, || {
                self.writer.lock().commit(&batch, &mut results);
            });
            queue.done.extend(tickets.into_iter().zip(results));
            queue.leading = false;
            self.wake.notify_all();
        }
    }
}
