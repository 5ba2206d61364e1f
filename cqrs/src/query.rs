//! [`QueryFeed`]: cqrs-es queries fed from a subscription with a durable checkpoint.

use std::future::Future;

use annals::{Durability, Store, Subscription};
use cqrs_es::{Aggregate, EventEnvelope, Query};

use crate::codec::decode;
use crate::store::check_type;

/// Events handed to the queries between two saves of the checkpoint (at most).
const SAVE_EVERY: u64 = 1_000;

/// Feeds cqrs-es [`Query`]s from the log instead of from the command that wrote the events:
/// every event of `A`'s aggregates, in commit order, from a durable checkpoint (a consumer
/// checkpoint of the store, named at creation). A read model survives restarts (the feed
/// goes on from its checkpoint) and can be rebuilt from zero ([`QueryFeed::rebuild`]), and
/// no event is lost between the store and the queries when a process dies after a commit.
///
/// Delivery is at least once: the checkpoint is saved after the events before it were
/// dispatched (every 1,000 events, whenever it has dispatched everything committed, and when
/// a call returns), so after a crash the events since the last save are dispatched again.
/// Under `Durability::Buffered` the store is synced before a save, so that the checkpoint
/// never gets ahead of what a power loss keeps. Consecutive events of one aggregate (consecutive
/// sequences) are dispatched together: the events of one commit, or of several in a row.
/// Run one feed per checkpoint at a time.
///
/// Give the framework no queries of its own for what a feed dispatches (`annals_cqrs(store,
/// vec![], services)`), or each event reaches the query twice. `A::TYPE` must be a
/// category (non-empty, no `-`), as [`AnnalsEventStore`](crate::AnnalsEventStore) requires.
pub struct QueryFeed<A: Aggregate> {
    store: Store,
    checkpoint: String,
    queries: Vec<Box<dyn Query<A>>>,
}

impl<A: Aggregate> QueryFeed<A> {
    /// A feed of `A`'s events to `queries`, resuming from the store's checkpoint
    /// `checkpoint` (from the start without one).
    pub fn new(
        store: Store,
        checkpoint: impl Into<String>,
        queries: Vec<Box<dyn Query<A>>>,
    ) -> Self {
        QueryFeed {
            store,
            checkpoint: checkpoint.into(),
            queries,
        }
    }

    /// Dispatches every event of `A`'s aggregates committed after the checkpoint, saves the
    /// checkpoint, and returns how many events it dispatched. An event that does not read as
    /// `A::Event` stops it with [`annals::Error::Json`] naming the event (the checkpoint then
    /// stays before it).
    pub async fn catch_up(&self) -> annals::Result<u64> {
        self.run(async {}, false).await
    }

    /// Catches up, then dispatches new events as they are committed (woken by the commits,
    /// no polling), until `stop` completes; saves the checkpoint and returns how many events
    /// it dispatched.
    pub async fn follow_until(&self, stop: impl Future<Output = ()>) -> annals::Result<u64> {
        self.run(stop, true).await
    }

    /// Sets the checkpoint back to the start: the next run dispatches every event again, to
    /// queries whose read models the caller has emptied.
    pub fn rebuild(&self) -> annals::Result<()> {
        self.store.save_checkpoint(&self.checkpoint, 0)
    }

    /// The position the feed goes on from.
    pub fn position(&self) -> annals::Result<u64> {
        Ok(self.store.checkpoint(&self.checkpoint)?.unwrap_or(0))
    }

    fn subscribe(&self, from: u64) -> annals::Result<Subscription> {
        check_type::<A>()?;
        Ok(self.store.subscribe_all(from).category(A::TYPE))
    }

    /// Saves `position` as the checkpoint, a `Buffered` store synced first (see the type's
    /// docs).
    fn save(&self, position: u64) -> annals::Result<()> {
        if !self.store.is_read_only() && self.store.options().durability == Durability::Buffered {
            self.store.sync()?;
        }
        self.store.save_checkpoint(&self.checkpoint, position)
    }

    async fn run(&self, stop: impl Future<Output = ()>, follow: bool) -> annals::Result<u64> {
        let mut sub = self.subscribe(self.position()?)?;
        let mut stop = std::pin::pin!(stop);
        let (mut dispatched, mut unsaved) = (0, 0);
        // The events being gathered for one dispatch, and the position after the last of them.
        let mut commit: Vec<EventEnvelope<A>> = Vec::new();
        let mut resume = sub.position();
        loop {
            let next = match sub.try_next() {
                Ok(None) => {
                    // Everything committed so far is here: hand it over before waiting.
                    self.dispatch(&mut commit).await;
                    if unsaved > 0 {
                        self.save(sub.position())?;
                        unsaved = 0;
                    }
                    if !follow {
                        break;
                    }
                    tokio::select! {
                        biased;
                        () = stop.as_mut() => break,
                        ev = sub.next_async() => ev,
                    }
                }
                other => other.and_then(|ev| {
                    ev.ok_or_else(|| annals::Error::InvalidInput("internal error: no event".into()))
                }),
            };
            let decoded = next.and_then(|ev| {
                let envelope = decode::<A>(aggregate_id::<A>(ev.stream()), &ev)?;
                Ok((ev.position(), envelope))
            });
            let (position, envelope) = match decoded {
                Ok(decoded) => decoded,
                Err(e) => {
                    // What came before is dispatched and remembered; the rest waits.
                    self.dispatch(&mut commit).await;
                    self.save(resume)?;
                    return Err(e);
                }
            };
            let same_commit = commit.last().is_some_and(|last| {
                last.aggregate_id == envelope.aggregate_id && last.sequence + 1 == envelope.sequence
            });
            if !same_commit {
                self.dispatch(&mut commit).await;
            }
            commit.push(envelope);
            resume = position + 1;
            dispatched += 1;
            unsaved += 1;
            if unsaved >= SAVE_EVERY {
                self.dispatch(&mut commit).await;
                self.save(resume)?;
                unsaved = 0;
                // A long backlog: let other tasks run, and stop if asked to.
                let stopped = tokio::select! {
                    biased;
                    () = stop.as_mut() => true,
                    () = tokio::task::yield_now() => false,
                };
                if stopped {
                    return Ok(dispatched);
                }
            }
        }
        self.dispatch(&mut commit).await;
        self.save(sub.position().max(resume))?;
        Ok(dispatched)
    }

    /// Hands the events of one commit to every query.
    async fn dispatch(&self, commit: &mut Vec<EventEnvelope<A>>) {
        if let Some(first) = commit.first() {
            let id = first.aggregate_id.clone();
            for query in &self.queries {
                query.dispatch(&id, commit).await;
            }
        }
        commit.clear();
    }
}

/// The aggregate id of a stream of `A`'s.
fn aggregate_id<A: Aggregate>(stream: &str) -> &str {
    stream
        .strip_prefix(A::TYPE)
        .and_then(|rest| rest.strip_prefix('-'))
        .unwrap_or(stream)
}
