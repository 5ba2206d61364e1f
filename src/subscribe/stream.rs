//! Feature `async`: a [`Subscription`] as a `futures_core::Stream`, woken by the writer's
//! commits (no polling, no thread).

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Result;
use crate::event::RecordedEvent;
use crate::subscribe::Subscription;

impl futures_core::Stream for Subscription {
    type Item = Result<RecordedEvent>;

    /// The next event, or `Pending` until one is committed (a read-only handle's
    /// subscription: until [`Store::refresh`](crate::Store::refresh) finds one); the task's
    /// waker is woken then. The stream never ends. Errors are those of
    /// [`Subscription::try_next`]: damage found in the log is yielded again on every later
    /// poll, with nothing after it delivered.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.try_next() {
                Ok(Some(ev)) => return Poll::Ready(Some(Ok(ev))),
                Err(e) => return Poll::Ready(Some(Err(e))),
                Ok(None) => {
                    if !this.wake_on_commit(cx.waker()) {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

impl Subscription {
    /// The next event, waiting for it as a future (feature `async`): the same as the
    /// [`Stream`](futures_core::Stream) this subscription is, without a `StreamExt` in scope.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let store = Store::open(dir.path())?;
    /// let mut sub = store.subscribe_all(0);
    /// let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    /// let ev = runtime.block_on(async {
    ///     let appender = store.clone();
    ///     tokio::spawn(async move {
    ///         appender.append_async("order-1", ExpectedVersion::Any, [EventData::new("Placed", b"{}".to_vec())]).await
    ///     });
    ///     sub.next_async().await // waits until the append is committed
    /// })?;
    /// assert_eq!(ev.stream(), "order-1");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn next_async(&mut self) -> Result<RecordedEvent> {
        let mut this = Pin::new(self);
        let next = poll_fn(|cx| futures_core::Stream::poll_next(this.as_mut(), cx)).await;
        next.unwrap_or_else(unreachable_end)
    }
}

/// A subscription's stream never ends; should it, the caller gets an error, not a panic.
fn unreachable_end() -> Result<RecordedEvent> {
    Err(crate::Error::InvalidInput(
        "internal error: a subscription's stream ended".into(),
    ))
}
