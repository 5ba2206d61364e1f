//! How cqrs-es events and snapshots lie in an annals store: stream names, payloads and
//! metadata.
//!
//! - The events of aggregate `id` of type `A::TYPE` are the stream `{A::TYPE}-{id}`, so the
//!   aggregate type is the stream's category (`Store::read_category`). Sequence `n` (cqrs-es
//!   counts from 1) is stream version `n - 1`.
//! - An event's type is `DomainEvent::event_type()`, its payload the event as serde_json
//!   writes it, its metadata the JSON object `{"event_version": .., "metadata": {..}}`.
//! - Snapshots go to the stream `{A::TYPE}.snapshot-{id}`, one event `Snapshot` each, the
//!   JSON `{"sequence": n, "aggregate": ..}`: the aggregate after sequence `n`. The newest one
//!   is read, older ones stay (compaction with a retention rule may remove them).

use std::collections::HashMap;

use annals::{EventData, RecordedEvent};
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use serde::{Deserialize, Serialize};

/// The event type of snapshot records.
pub(crate) const SNAPSHOT_TYPE: &str = "Snapshot";

/// The stream of aggregate `id`.
pub fn stream_name<A: Aggregate>(id: &str) -> String {
    format!("{}-{id}", A::TYPE)
}

/// The stream of aggregate `id`'s snapshots.
pub fn snapshot_stream_name<A: Aggregate>(id: &str) -> String {
    format!("{}.snapshot-{id}", A::TYPE)
}

#[derive(Serialize, Deserialize)]
struct Metadata {
    event_version: String,
    metadata: HashMap<String, String>,
}

/// A snapshot record: the aggregate after `sequence`.
#[derive(Serialize, Deserialize)]
pub(crate) struct Snapshot<T> {
    pub sequence: usize,
    pub aggregate: T,
}

/// The annals event for a cqrs-es envelope.
pub(crate) fn encode<A: Aggregate>(envelope: &EventEnvelope<A>) -> annals::Result<EventData> {
    let event = &envelope.payload;
    let metadata = Metadata {
        event_version: event.event_version(),
        metadata: envelope.metadata.clone(),
    };
    let metadata = serde_json::to_vec(&metadata).map_err(|e| annals::Error::Json {
        event: format!("the metadata of a new {:?} event", event.event_type()),
        reason: e.to_string(),
    })?;
    Ok(EventData::json(event.event_type(), event)?.metadata(metadata))
}

/// The cqrs-es envelope of an event of aggregate `id`. [`annals::Error::Json`] naming the
/// event if its payload or metadata is not what `A` reads.
pub(crate) fn decode<A: Aggregate>(
    id: &str,
    ev: &RecordedEvent,
) -> annals::Result<EventEnvelope<A>> {
    let payload = ev.json::<A::Event>()?;
    let metadata: Metadata = match ev.metadata() {
        [] => Metadata {
            event_version: String::new(),
            metadata: HashMap::new(),
        },
        bytes => serde_json::from_slice(bytes).map_err(|e| annals::Error::Json {
            event: format!(
                "the metadata of the {:?} event at position {} (stream {:?})",
                ev.event_type(),
                ev.position(),
                ev.stream()
            ),
            reason: e.to_string(),
        })?,
    };
    Ok(EventEnvelope {
        aggregate_id: id.to_string(),
        sequence: ev.version() as usize + 1,
        payload,
        metadata: metadata.metadata,
    })
}
