//! [`AnnalsEventStore`]: cqrs-es's `EventStore` on an annals store.

use std::collections::HashMap;
use std::marker::PhantomData;

use annals::{ExpectedVersion, Store};
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventEnvelope, EventStore};

use crate::codec::{decode, encode, snapshot_stream_name, stream_name, Snapshot, SNAPSHOT_TYPE};
use crate::error::aggregate_error;

/// cqrs-es's `EventStore` for aggregates of type `A`, on an annals [`Store`]: each aggregate
/// one stream (`{A::TYPE}-{id}`, layout in the crate docs), committed with an expected
/// version so that of two commands racing on one aggregate the second gets
/// `AggregateError::AggregateConflict`, as cqrs-es expects. Appends are
/// [`Store::append_async`]: durable when the commit returns, sharing group commits with every
/// other command in flight, holding no thread while they wait.
///
/// With [`AnnalsEventStore::with_snapshots`], loading reads the newest snapshot and only the
/// events after it.
pub struct AnnalsEventStore<A> {
    store: Store,
    snapshot_every: Option<usize>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Clone for AnnalsEventStore<A> {
    fn clone(&self) -> Self {
        AnnalsEventStore {
            store: self.store.clone(),
            snapshot_every: self.snapshot_every,
            _aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate> AnnalsEventStore<A> {
    /// Aggregates loaded from all their events.
    pub fn new(store: Store) -> Self {
        AnnalsEventStore {
            store,
            snapshot_every: None,
            _aggregate: PhantomData,
        }
    }

    /// Writes a snapshot of an aggregate after each commit that leaves `every` or more events
    /// after its newest snapshot (0 is taken as 1), and loads from the newest snapshot plus
    /// the events after it. A snapshot is the aggregate as the command left it (cqrs-es
    /// applies each event to it as the handler writes it to the `EventSink`), written after
    /// the events are durable; if writing it fails, the commit still succeeds and the next
    /// one tries again. A snapshot that no longer reads as `A` (its fields changed) is
    /// ignored: the aggregate is loaded from all its events.
    #[must_use]
    pub fn with_snapshots(mut self, every: usize) -> Self {
        self.snapshot_every = Some(every.max(1));
        self
    }

    /// The annals store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The newest readable snapshot of `id`, if any.
    fn snapshot(&self, id: &str) -> Result<Option<Snapshot<A>>, AggregateError<A::Error>> {
        let stream = snapshot_stream_name::<A>(id);
        let Some(newest) = self.store.read_stream_backward(&stream, None).next() else {
            return Ok(None);
        };
        let newest = newest.map_err(aggregate_error)?;
        // Written by an older shape of `A`: not an error, only not a shortcut.
        Ok(newest.json::<Snapshot<A>>().ok())
    }
}

/// An aggregate as [`AnnalsEventStore`] loaded it.
pub struct AnnalsAggregateContext<A> {
    aggregate_id: String,
    aggregate: A,
    current_sequence: usize,
    snapshot_sequence: usize,
    events_read: usize,
}

impl<A> AnnalsAggregateContext<A> {
    /// The aggregate's id.
    pub fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    /// The sequence number of its last event (0 for a new aggregate).
    pub fn current_sequence(&self) -> usize {
        self.current_sequence
    }

    /// The sequence its newest snapshot was taken at (0 without one).
    pub fn snapshot_sequence(&self) -> usize {
        self.snapshot_sequence
    }

    /// How many events loading it read (those after the snapshot, with snapshots).
    pub fn events_read(&self) -> usize {
        self.events_read
    }
}

impl<A: Aggregate> AggregateContext<A> for AnnalsAggregateContext<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.aggregate
    }
}

impl<A: Aggregate> EventStore<A> for AnnalsEventStore<A> {
    type AC = AnnalsAggregateContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        self.store
            .read_stream(&stream_name::<A>(aggregate_id), 0)
            .map(|ev| decode(aggregate_id, &ev?))
            .collect::<annals::Result<_>>()
            .map_err(aggregate_error)
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<AnnalsAggregateContext<A>, AggregateError<A::Error>> {
        let snapshot = match self.snapshot_every {
            Some(_) => self.snapshot(aggregate_id)?,
            None => None,
        };
        let (aggregate, sequence) =
            snapshot.map_or_else(|| (A::default(), 0), |s| (s.aggregate, s.sequence));
        let mut context = AnnalsAggregateContext {
            aggregate_id: aggregate_id.to_string(),
            aggregate,
            current_sequence: sequence,
            snapshot_sequence: sequence,
            events_read: 0,
        };
        // Sequence n is version n - 1: the events after the snapshot start at version n.
        for ev in self
            .store
            .read_stream(&stream_name::<A>(aggregate_id), sequence as u64)
        {
            let envelope = decode::<A>(aggregate_id, &ev.map_err(aggregate_error)?)
                .map_err(aggregate_error)?;
            context.current_sequence = envelope.sequence;
            context.events_read += 1;
            context.aggregate.apply(envelope.payload);
        }
        Ok(context)
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: AnnalsAggregateContext<A>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let id = context.aggregate_id.as_str();
        let envelopes: Vec<EventEnvelope<A>> = (context.current_sequence + 1..)
            .zip(events)
            .map(|(sequence, payload)| EventEnvelope {
                aggregate_id: id.to_string(),
                sequence,
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        let data = envelopes
            .iter()
            .map(encode)
            .collect::<annals::Result<Vec<_>>>();
        let expected = match context.current_sequence {
            0 => ExpectedVersion::NoStream,
            n => ExpectedVersion::Exact(n as u64 - 1),
        };
        let append = match data {
            Ok(data) => self
                .store
                .append_async(&stream_name::<A>(id), expected, data),
            Err(e) => return Err(aggregate_error(e)),
        };
        append.await.map_err(aggregate_error)?;
        let last = context.current_sequence + envelopes.len();
        if let Some(every) = self.snapshot_every {
            if last - context.snapshot_sequence >= every {
                let snapshot = Snapshot {
                    sequence: last,
                    aggregate: &context.aggregate,
                };
                // A snapshot is a shortcut: failing to write one loses nothing.
                if let Ok(data) = annals::EventData::json(SNAPSHOT_TYPE, &snapshot) {
                    let stream = snapshot_stream_name::<A>(id);
                    let _ = self
                        .store
                        .append_async(&stream, ExpectedVersion::Any, [data])
                        .await;
                }
            }
        }
        Ok(envelopes)
    }
}
