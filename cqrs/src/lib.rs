//! # annals-cqrs — cqrs-es on an embedded annals store
//!
//! [cqrs-es](https://docs.rs/cqrs-es) keeps its events in PostgreSQL, MySQL or DynamoDB: a
//! server to run in every case. This crate is its event store on an [`annals::Store`] in the
//! application's own process. Switching is one constructor: `annals_cqrs(store, queries,
//! services)` where the application had `postgres_cqrs(pool, queries, services)`.
//!
//! ```
//! use annals_cqrs::{annals_cqrs, QueryFeed};
//! use cqrs_es::{Aggregate, DomainEvent};
//! use cqrs_es::event_sink::EventSink;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Counter { value: u64 }
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! enum CounterEvent { Added(u64) }
//!
//! impl DomainEvent for CounterEvent {
//!     fn event_type(&self) -> String { "Added".into() }
//!     fn event_version(&self) -> String { "1".into() }
//! }
//!
//! #[derive(Debug)]
//! struct CounterError;
//! impl std::fmt::Display for CounterError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("overflow") }
//! }
//! impl std::error::Error for CounterError {}
//!
//! impl Aggregate for Counter {
//!     const TYPE: &'static str = "counter";
//!     type Command = u64;
//!     type Event = CounterEvent;
//!     type Error = CounterError;
//!     type Services = ();
//!
//!     async fn handle(&mut self, add: u64, _: &(), sink: &EventSink<Self>) -> Result<(), CounterError> {
//!         self.value.checked_add(add).ok_or(CounterError)?;
//!         sink.write(CounterEvent::Added(add), self).await;
//!         Ok(())
//!     }
//!
//!     fn apply(&mut self, CounterEvent::Added(n): CounterEvent) { self.value += n; }
//! }
//!
//! # let dir = tempfile::tempdir()?;
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = annals::Store::open(dir.path())?;
//! let cqrs = annals_cqrs::<Counter>(store.clone(), vec![], ());
//! cqrs.execute("c-1", 2).await?;
//! cqrs.execute("c-1", 3).await?;
//! // The events are the stream "counter-c-1", versions 0 and 1 (sequences 1 and 2).
//! assert_eq!(store.stream_version("counter-c-1"), Some(1));
//! // Queries are fed from the log, from a durable checkpoint.
//! let feed = QueryFeed::<Counter>::new(store, "counter-views", vec![]);
//! assert_eq!(feed.catch_up().await?, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`AnnalsEventStore`]: cqrs-es's `EventStore`. Each aggregate is one stream, committed
//!   with an expected version (two commands racing on one aggregate: the second gets
//!   `AggregateError::AggregateConflict`), durably through [`annals::Store::append_async`];
//!   snapshots every N events with [`AnnalsEventStore::with_snapshots`].
//! - [`QueryFeed`]: cqrs-es `Query`s fed from a subscription with a durable checkpoint, so
//!   read models survive restarts and can be rebuilt by replay.
//! - Everything annals offers still works on the same store: category reads of an aggregate
//!   type, backups, compaction, `annals dump`.
//!
//! How events lie in the store: [`codec`].

#![deny(missing_docs)]

pub mod codec;
mod error;
mod query;
mod store;

use cqrs_es::{Aggregate, CqrsFramework, Query};

pub use query::QueryFeed;
pub use store::{AnnalsAggregateContext, AnnalsEventStore};

/// A `CqrsFramework` for `A` on `store`, loading aggregates from all their events.
pub fn annals_cqrs<A: Aggregate>(
    store: annals::Store,
    queries: Vec<Box<dyn Query<A>>>,
    services: A::Services,
) -> CqrsFramework<A, AnnalsEventStore<A>> {
    CqrsFramework::new(AnnalsEventStore::new(store), queries, services)
}

/// A `CqrsFramework` for `A` on `store` that snapshots an aggregate every `snapshot_every`
/// events and loads it from its newest snapshot plus the events after it.
pub fn annals_snapshot_cqrs<A: Aggregate>(
    store: annals::Store,
    queries: Vec<Box<dyn Query<A>>>,
    snapshot_every: usize,
    services: A::Services,
) -> CqrsFramework<A, AnnalsEventStore<A>> {
    CqrsFramework::new(
        AnnalsEventStore::new(store).with_snapshots(snapshot_every),
        queries,
        services,
    )
}
