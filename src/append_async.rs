//! [`Store::append_async`]: an append that waits as a future instead of a thread.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::store::Store;
use crate::write::commit::TaskSlot;
use crate::write::validate::Request;

/// The future of [`Store::append_async`]: resolves to the append's result once the group
/// commit that holds it is durable. `Send`, `'static` (it holds a handle on the store), and
/// bound to no runtime.
///
/// Nothing is queued before the first poll. From the first poll on the append belongs to
/// the store: dropping the future then does not withdraw it, it is committed all the same
/// (atomically, like every append) and only its result is lost. A future dropped before its
/// first poll writes nothing. Until it completes or is dropped the future keeps its store
/// open (it holds a handle), so the directory stays locked.
#[must_use = "futures do nothing unless polled: the append is queued at the first poll"]
pub struct AppendFuture {
    state: State,
}

enum State {
    /// Not polled yet: the append, checked.
    Unqueued(Store, Request),
    /// Queued; the store is kept open until the result comes.
    Queued(Store, TaskSlot),
    /// Invalid input or a read-only handle: returned at the first poll.
    Failed(Error),
    Done,
}

impl fmt::Debug for AppendFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Unqueued(..) => "unqueued",
            State::Queued(..) => "queued",
            State::Failed(_) => "failed",
            State::Done => "done",
        };
        f.debug_struct("AppendFuture")
            .field("state", &state)
            .finish()
    }
}

impl Future for AppendFuture {
    type Output = Result<AppendResult>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Unqueued(store, request) => {
                let slot = match store
                    .commit()
                    .and_then(|c| c.enqueue_task(request, cx.waker()))
                {
                    Ok(slot) => slot,
                    Err(e) => return Poll::Ready(Err(e)),
                };
                self.state = State::Queued(store, slot);
                Poll::Pending
            }
            State::Queued(store, slot) => match slot.poll(cx.waker()) {
                Some(result) => Poll::Ready(result),
                None => {
                    self.state = State::Queued(store, slot);
                    Poll::Pending
                }
            },
            State::Failed(e) => Poll::Ready(Err(e)),
            State::Done => Poll::Ready(Err(Error::InvalidInput(
                "an AppendFuture was polled after it completed".into(),
            ))),
        }
    }
}

impl Store {
    /// [`Store::append`] as a future: the same checks, atomicity and durability, and it
    /// shares group commits with blocking appends. It needs no particular runtime (only the
    /// `Waker` of the task that polls it) and holds no thread while it waits: the appends
    /// waiting are committed together by a thread of the store (`annals-commit`, started by
    /// the first async append), which wakes each task when the batch holding its append is
    /// durable. Thousands in flight from one thread cost one `write` and one `fdatasync` per
    /// batch.
    ///
    /// The append is queued at the first poll; see [`AppendFuture`] for what dropping the
    /// future does. Invalid input and a read-only handle fail at the first poll.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let store = Store::open(dir.path())?;
    /// let append = store.append_async("order-42", ExpectedVersion::NoStream, [EventData::new("Placed", b"{}".to_vec())]);
    /// // Any executor: a tokio task, a hand-made loop, or here the simplest one.
    /// let result = block_on(append)?;
    /// assert_eq!(result.first_version, 0);
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     struct Unpark(std::thread::Thread);
    /// #     impl std::task::Wake for Unpark { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
    /// #     let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) { return out; }
    /// #         std::thread::park();
    /// #     }
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_async(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = EventData>,
    ) -> AppendFuture {
        let state = match self.request(stream, expected, events.into_iter().collect()) {
            Ok(request) => State::Unqueued(self.clone(), request),
            Err(e) => State::Failed(e),
        };
        AppendFuture { state }
    }
}
