//! Group commit: many callers append at once; one of them (the leader) takes every append
//! waiting at that moment and has the writer commit them with one `write` and one
//! `fdatasync`, while the appends that arrive meanwhile gather for the next batch. Each caller
//! is woken when its own append's batch is durable (or has failed).
//!
//! The idea is okaywal's: no dedicated thread for blocking appends; a caller that finds no
//! leader becomes the leader. Wake-ups are targeted: when a batch is done the leader puts each
//! result in its caller's own slot and wakes exactly the callers of that batch, plus the first
//! caller waiting for the next batch (to lead it). Waking every waiter instead (a condition
//! variable's `notify_all`) and handing results back through the shared queue lock spent most
//! of the time of 64 appending threads on two cores in context switches.
//!
//! An async append ([`GroupCommit::enqueue_task`]) has no thread to lead with: the first one
//! starts the committer thread (`annals-commit`), which is woken to lead whenever the first
//! caller waiting is a task (once awake it leads every batch waiting, blocking callers'
//! included), and wakes each task through its `Waker`. Blocking and async appends share the
//! batches.
//!
//! Wakers are the application's code: a leader wakes them after the writer is released and
//! after it has handed leadership on, each under `catch_unwind`, so that a waker that panics
//! or re-enters the store can neither poison the writer nor strand the queue.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Waker;
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::event::AppendResult;
use crate::fs::dir::DirLock;
use crate::log::CommitSignal;
use crate::write::validate::Request;
use crate::write::writer::Writer;

/// How a caller waiting for its result is woken.
#[derive(Debug)]
enum Waiter {
    /// A thread blocked in [`GroupCommit::append`].
    Thread(Thread),
    /// A task: the waker of its latest poll.
    Task(Waker),
}

#[derive(Debug)]
struct SlotState {
    result: Option<Result<AppendResult>>,
    /// The committed request, handed back with the result so that the caller's thread frees
    /// what it allocated (freeing it in the leader's thread contends for the allocator).
    spent: Option<Request>,
    waiter: Waiter,
}

/// Where one append's result is put.
type Slot = Arc<Mutex<SlotState>>;

fn slot(waiter: Waiter) -> Slot {
    Arc::new(Mutex::new(SlotState {
        result: None,
        spent: None,
        waiter,
    }))
}

#[derive(Debug, Default)]
struct Queue {
    /// Appends waiting for the next batch, and their callers' slots.
    waiting: Vec<Request>,
    slots: Vec<Slot>,
    /// A leader is committing a batch.
    leading: bool,
    /// The committer thread, once an async append started it.
    committer: Option<Thread>,
}

/// The group-commit queue in front of the writer.
#[derive(Debug)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
    writer: Mutex<Writer>,
    /// The committer thread's handle, joined by [`GroupCommit::stop_committer`].
    committer: Mutex<Option<JoinHandle<()>>>,
    stopping: AtomicBool,
    /// The writer's commit signal, whose waiting tasks a leader wakes after each batch.
    signal: Arc<CommitSignal>,
    /// The store directory's lock, released only after the writer has closed (fields drop
    /// in order), whichever thread drops the last handle on this.
    _lock: DirLock,
}

/// An async append's place in the queue: see [`TaskSlot::poll`].
#[derive(Debug)]
pub(crate) struct TaskSlot(Slot);

impl TaskSlot {
    /// The result once the append's batch is done; until then `waker` is the one woken.
    pub fn poll(&self, waker: &Waker) -> Option<Result<AppendResult>> {
        let mut state = self.0.lock();
        let state = &mut *state;
        if let (None, Waiter::Task(w)) = (&state.result, &mut state.waiter) {
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
        }
        let spent = state.spent.take();
        let result = state.result.take();
        drop(spent);
        result
    }
}

impl GroupCommit {
    pub fn new(writer: Writer, lock: DirLock) -> Self {
        let (_, _, signal) = writer.shared();
        GroupCommit {
            queue: Mutex::new(Queue::default()),
            writer: Mutex::new(writer),
            committer: Mutex::new(None),
            stopping: AtomicBool::new(false),
            signal,
            _lock: lock,
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
        let me = std::thread::current();
        let slots: Vec<Slot> = requests
            .iter()
            .map(|_| slot(Waiter::Thread(me.clone())))
            .collect();
        {
            let mut queue = self.queue.lock();
            queue.waiting.extend(requests);
            queue.slots.extend(slots.iter().cloned());
        }
        let mut results = Vec::with_capacity(slots.len());
        for slot in &slots {
            loop {
                let (result, spent) = {
                    let mut state = slot.lock();
                    (state.result.take(), state.spent.take())
                };
                drop(spent);
                if let Some(result) = result {
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

    /// Queues one async append: the committer thread (started by the first) commits it with
    /// the next batch and wakes `waker`. Once queued, the append is committed whether or not
    /// anyone polls for its result.
    pub fn enqueue_task(self: &Arc<Self>, request: Request, waker: &Waker) -> Result<TaskSlot> {
        let slot = slot(Waiter::Task(waker.clone()));
        let committer = {
            let mut queue = self.queue.lock();
            if queue.committer.is_none() {
                let for_thread = Arc::clone(self);
                let handle = std::thread::Builder::new()
                    .name("annals-commit".into())
                    .spawn(move || for_thread.run_committer())
                    .map_err(|e| Error::io("start the committer thread", "annals-commit", e))?;
                queue.committer = Some(handle.thread().clone());
                *self.committer.lock() = Some(handle);
            }
            // Whoever queued the first append waiting (and a leader at work) will see this one
            // committed: only an append that finds the queue idle wakes the committer.
            let idle = queue.waiting.is_empty() && !queue.leading;
            queue.waiting.push(request);
            queue.slots.push(Arc::clone(&slot));
            queue.committer.clone().filter(|_| idle)
        };
        if let Some(thread) = committer {
            thread.unpark();
        }
        Ok(TaskSlot(slot))
    }

    /// The committer thread: leads every batch whose first caller is a task, until
    /// [`GroupCommit::stop_committer`] and the queue is empty.
    fn run_committer(&self) {
        /// Should the thread die of a panic, the next async append starts another.
        struct Exit<'a>(&'a GroupCommit);
        impl Drop for Exit<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.queue.lock().committer = None;
                }
            }
        }
        let _exit = Exit(self);
        loop {
            while self.lead_if_free() {}
            if self.stopping.load(Ordering::Acquire) {
                if self.queue.lock().waiting.is_empty() {
                    return;
                }
                // Another leader is finishing a batch.
                std::thread::park_timeout(Duration::from_millis(1));
            } else {
                std::thread::park();
            }
        }
    }

    /// Stops the committer thread, if one started, after it has committed every append
    /// queued (async appends whose futures were dropped included). Called on the committer
    /// itself (a waker it woke dropped the last handle on the store), it only tells it to
    /// stop: the thread ends once it returns there.
    pub fn stop_committer(&self) {
        self.stopping.store(true, Ordering::Release);
        let handle = self.committer.lock().take();
        if let Some(handle) = handle {
            handle.thread().unpark();
            if handle.thread().id() != std::thread::current().id() {
                // A committer that died of a panic has nothing left to report.
                let _ = handle.join();
            }
        }
    }

    /// If no batch is being committed, commits every waiting append and wakes their callers
    /// and the next leader. Returns whether it did.
    fn lead_if_free(&self) -> bool {
        let (batch, slots) = {
            let mut queue = self.queue.lock();
            if queue.leading || queue.waiting.is_empty() {
                return false;
            }
            queue.leading = true;
            (
                std::mem::take(&mut queue.waiting),
                std::mem::take(&mut queue.slots),
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
        let mut wake = Vec::with_capacity(slots.len());
        for ((slot, result), request) in slots.iter().zip(results).zip(batch) {
            let mut state = slot.lock();
            state.result = Some(result);
            state.spent = Some(request);
            // Nobody waits on this slot after its result: no waker to keep.
            wake.push(std::mem::replace(
                &mut state.waiter,
                Waiter::Task(Waker::noop().clone()),
            ));
        }
        let next_leader = {
            let mut queue = self.queue.lock();
            queue.leading = false;
            let first = queue.slots.first().map(|slot| match &slot.lock().waiter {
                Waiter::Thread(thread) => Some(thread.clone()),
                Waiter::Task(_) => None,
            });
            first.map(|thread| thread.or_else(|| queue.committer.clone()))
        };
        // The next batch first: nothing a waker does can hold it up.
        if let Some(Some(thread)) = next_leader {
            thread.unpark();
        }
        let me = std::thread::current().id();
        for waiter in wake {
            match waiter {
                Waiter::Thread(thread) if thread.id() != me => thread.unpark(),
                Waiter::Thread(_) => {}
                Waiter::Task(waker) => {
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| waker.wake()));
                }
            }
        }
        self.signal.wake_tasks();
        true
    }
}
