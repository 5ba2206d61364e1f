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
/// [`Store::append_async`]: durable when the commit returns (under the default
/// `Durability::Fsync`), sharing group commits with every other command in flight, holding no
/// thread while they wait.
///
/// `A::TYPE` must be non-empty and hold no `-` (it is the category of the streams; other
/// types fail every load and commit with `UnexpectedError`). Loading fails with
/// `UnexpectedError` rather than give a wrong state when the stream lacks events: it has
/// retention rules of its own, was soft-deleted, or default retention or compaction removed
/// some of its events. (Erasing an aggregate: erase both its stream and its snapshot
/// stream.)
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

    /// Loads an aggregate from its newest snapshot plus the events after it, and writes a
    /// new snapshot whenever a load read `every` or more events after the newest one (0 is
    /// taken as 1). Snapshots are taken of loaded aggregates, whose state is exactly that
    /// after their last event, never of one a command changed. Writing one that fails is
    /// skipped (the next load tries again). A snapshot that no longer reads as `A` (its
    /// fields changed), or covers events its stream no longer holds (erased), is passed
    /// over: the aggregate is loaded from all its events.
    #[must_use]
    pub fn with_snapshots(mut self, every: usize) -> Self {
        self.snapshot_every = Some(every.max(1));
        self
    }

    /// The annals store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The newest snapshot of `id` that can be used: it reads as `A` and the stream holds
    /// every event it covers (a stream erased or emptied since is not brought back by it). A
    /// snapshot is only a shortcut: one that cannot be read is passed over.
    fn snapshot(&self, id: &str, held: Option<u64>) -> Option<Snapshot<A>> {
        let stream = snapshot_stream_name::<A>(id);
        let newest = self
            .store
            .read_stream_backward(&stream, None)
            .next()?
            .ok()?;
        let snapshot = newest.json::<Snapshot<A>>().ok()?;
        let covered = held.map_or(0, |v| v as usize + 1);
        (snapshot.sequence <= covered).then_some(snapshot)
    }

    /// Writes a snapshot of `context`, whose state is that after its current sequence by
    /// construction (it was loaded, not commanded). Failing to write one loses nothing.
    async fn write_snapshot(&self, context: &AnnalsAggregateContext<A>) {
        let snapshot = Snapshot {
            sequence: context.current_sequence,
            aggregate: &context.aggregate,
        };
        if let Ok(data) = annals::EventData::json(SNAPSHOT_TYPE, &snapshot) {
            let stream = snapshot_stream_name::<A>(&context.aggregate_id);
            let _ = self
                .store
                .append_async(&stream, ExpectedVersion::Any, [data])
                .await;
        }
    }
}

/// An aggregate whose stream lacks events (a retention rule, a soft delete or compaction
/// hid them): loading it would give a wrong state.
fn incomplete<E: std::error::Error>(stream: &str, why: String) -> AggregateError<E> {
    AggregateError::UnexpectedError(Box::new(annals::Error::InvalidInput(format!(
        "aggregate stream {stream:?}: {why}; an aggregate needs every event of its stream"
    ))))
}

/// `A::TYPE` as a stream category: non-empty, without the `-` that ends a category.
pub(crate) fn check_type<A: Aggregate>() -> annals::Result<()> {
    if A::TYPE.is_empty() || A::TYPE.contains('-') {
        return Err(annals::Error::InvalidInput(format!(
            "aggregate type {:?}: must be non-empty and without '-' (it is the category of its streams)",
            A::TYPE
        )));
    }
    Ok(())
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
        check_type::<A>().map_err(aggregate_error)?;
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
        check_type::<A>().map_err(aggregate_error)?;
        let stream = stream_name::<A>(aggregate_id);
        if let Some(rules) = self.store.retention(&stream) {
            return Err(incomplete(
                &stream,
                format!("it has retention rules or was deleted ({rules:?})"),
            ));
        }
        let held = self
            .store
            .try_stream_version(&stream)
            .map_err(aggregate_error)?;
        let snapshot = match self.snapshot_every {
            Some(_) => self.snapshot(aggregate_id, held),
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
        for ev in self.store.read_stream(&stream, sequence as u64) {
            let ev = ev.map_err(aggregate_error)?;
            if ev.version() != context.current_sequence as u64 {
                return Err(incomplete(
                    &stream,
                    format!(
                        "version {} follows sequence {}",
                        ev.version(),
                        context.current_sequence
                    ),
                ));
            }
            let envelope = decode::<A>(aggregate_id, &ev).map_err(aggregate_error)?;
            context.current_sequence = envelope.sequence;
            context.events_read += 1;
            context.aggregate.apply(envelope.payload);
        }
        if held.map_or(0, |v| v as usize + 1) != context.current_sequence {
            return Err(incomplete(
                &stream,
                format!(
                    "it holds versions up to {held:?}, {} were read",
                    context.current_sequence
                ),
            ));
        }
        if let Some(every) = self.snapshot_every {
            if context.current_sequence - context.snapshot_sequence >= every {
                self.write_snapshot(&context).await;
            }
        }
        Ok(context)
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: AnnalsAggregateContext<A>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        check_type::<A>().map_err(aggregate_error)?;
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
        Ok(envelopes)
    }
}
