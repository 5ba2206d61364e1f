//! [`reclaimable`]: what compaction would remove now, found without reading the whole log:
//! each stream with rules of its own is walked back from its last event through its back
//! pointers (so the cost grows with those streams' events, not with the store).

use crate::error::Result;
use crate::format::record_len;
use crate::lifecycle::Retentions;
use crate::read::LogView;

/// What [`Store::compact`](crate::Store::compact) would remove now: the events of sealed
/// segments that soft deletes and retention rules hide (a stream's last event always stays).
/// See [`Store::reclaimable`](crate::Store::reclaimable).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reclaimable {
    /// Streams with events to remove.
    pub streams: usize,
    /// Events compaction would remove.
    pub events: u64,
    /// Bytes of their records.
    pub bytes: u64,
}

/// Counts what compaction would remove from the streams with rules of their own.
pub(crate) fn reclaimable(view: &LogView, retention: &Retentions) -> Result<Reclaimable> {
    let snapshot = view.snapshot();
    let sealed_end = snapshot.segments[snapshot.segments.len() - 1].base_position();
    let mut total = Reclaimable::default();
    for (stream, _) in retention.all() {
        let rule = retention.get(&stream);
        let Some(head) = view.lookup(&stream, |_, found| Ok(found.map(|f| f.head)))? else {
            continue;
        };
        // Oldest first: (version, timestamp, position, record bytes) of every event left.
        let mut events = Vec::new();
        snapshot.walk_chain(&stream, head.last_location, |ev, _| {
            let len = record_len(
                ev.stream.len(),
                ev.event_type.len(),
                ev.metadata.len(),
                ev.payload.len(),
                ev.id.is_some(),
            );
            events.push((ev.version, ev.timestamp, ev.position, len as u64));
        })?;
        events.reverse();
        let min_timestamp = rule.min_timestamp();
        let by_age = events
            .iter()
            .find(|e| e.1 >= min_timestamp)
            .map_or(head.last_version, |e| e.0);
        let cut = rule
            .first_visible(head.last_version)
            .max(by_age)
            .min(head.last_version);
        let gone = events.iter().filter(|e| e.0 < cut && e.2 < sealed_end);
        let (count, bytes) = gone.fold((0, 0), |(n, b), e| (n + 1, b + e.3));
        if count > 0 {
            total.streams += 1;
            total.events += count;
            total.bytes += bytes;
        }
    }
    Ok(total)
}
