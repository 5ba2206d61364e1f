//! Staging one append of a batch: its checks against the log and the appends before it in
//! the batch (idempotency, expected version), then its frame, encoded into the writer's buffer.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use super::Writer;
use crate::error::{Error, Result};
use crate::event::AppendResult;
use crate::format::{begin_frame, encode_record, finish_frame, location, RecordView, NO_PREV};
use crate::index::ids::id_key;
use crate::index::{HashKeyed, Head, NameHasher, PassThrough, Slot};
use crate::write::validate::{deduplicate, Request};

/// What a batch has written so far, for checking the appends after it.
#[derive(Debug)]
pub(super) struct BatchState<'b> {
    /// The time its events are stamped with (those that bring none), in microseconds.
    pub(super) now: u64,
    /// Streams appended to: slot, last version, last location. (Cheap hashers: one batch's
    /// names, looked up for every append.)
    pub(super) heads: HashMap<&'b str, (Slot, u64, u64), BuildHasherDefault<NameHasher>>,
    /// Free hash slots that new streams of the batch have taken.
    pub(super) claimed: HashSet<u64, BuildHasherDefault<PassThrough>>,
    /// Ids written: key -> (stream, id, position, version).
    pub(super) ids: HashKeyed<(&'b str, u128, u64, u64)>,
    /// More appends follow the one being staged in this batch.
    pub(super) more_follow: bool,
}

impl BatchState<'_> {
    /// The state of a batch of `appends` appends, stamped now.
    pub(super) fn new(appends: usize) -> Self {
        BatchState {
            now: now_micros(),
            heads: HashMap::with_capacity_and_hasher(appends, Default::default()),
            claimed: HashSet::default(),
            ids: HashKeyed::default(),
            more_follow: false,
        }
    }
}

/// An append of the batch being written that passed its checks.
#[derive(Debug, Clone)]
pub(super) struct Accepted {
    /// Index of the request in the batch.
    pub(super) request: usize,
    pub(super) first_position: u64,
    pub(super) first_version: u64,
    pub(super) slot: Slot,
    /// The stream's head before it.
    pub(super) below: Option<Head>,
    /// Its events' locations, in `Writer::locations`.
    pub(super) locations: Range<usize>,
}

impl Writer {
    /// Checks one request of a batch and, if it passes, encodes its frame into the buffer.
    /// The `Ok` value is a placeholder for an encoded append (replaced once the batch is
    /// durable) or the original positions of a deduplicated one.
    pub(super) fn stage<'b>(
        &mut self,
        i: usize,
        request: &'b Request,
        batch: &mut BatchState<'b>,
    ) -> Result<AppendResult> {
        let stream = request.stream.as_str();
        if self.erasing.contains(stream) {
            return Err(Error::Erasing {
                stream: stream.to_string(),
            });
        }
        let (slot, head) = match batch.heads.get(stream) {
            Some(&(slot, version, location)) => (slot, Some((version, location))),
            None => {
                let index = self.index.read();
                let (slot, head) = index.find(stream, |l, s, v| self.state.is_event_at(l, s, v))?;
                let head = head.map(|h| (h.last_version, h.last_location));
                // A new stream whose free hash slot an earlier new stream of this batch took
                // goes to the collided map, as it would once that stream is in the index.
                match slot {
                    Slot::Hashed(hash) if head.is_none() && batch.claimed.contains(&hash) => {
                        (Slot::Collided, None)
                    }
                    _ => (slot, head),
                }
            }
        };
        let held = |id: u128| -> Result<Option<(u64, u64)>> {
            let key = id_key(stream, id);
            if let Some(&(s, held_id, position, version)) = batch.ids.get(&key) {
                if s == stream && held_id == id {
                    return Ok(Some((position, version)));
                }
            }
            let Some(location) = self.ids.get(key)? else {
                return Ok(None);
            };
            // An event that erasure removed is not held.
            let Some((view, _)) = self.state.kept_record_at(location)? else {
                return Ok(None);
            };
            Ok((view.stream == stream && view.id == Some(id))
                .then_some((view.position, view.version)))
        };
        if let Some(original) = deduplicate(stream, &request.events, held)? {
            return Ok(original);
        }
        let actual = head.map(|(version, _)| version);
        if !request.expected.is_satisfied_by(actual) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_string(),
                expected: request.expected,
                actual,
            });
        }
        let events = &request.events;
        let count = events.len() as u64;
        let first_version = match actual {
            None => Some(0),
            Some(v) => v.checked_add(1).filter(|f| f.checked_add(count).is_some()),
        };
        let Some(first_version) = first_version else {
            return Err(Error::InvalidInput(format!(
                "stream {stream:?} has no versions left after {actual:?}"
            )));
        };
        self.make_room(request.frame_len)?;
        // A new stream under an erased name: snapshots keep its name again.
        self.erased.remove(stream);
        let tail_seq = self.tail().seq();
        let first_position = self.state.next_position;
        let now = batch.now;
        let first_location = self.locations.len();
        let start = begin_frame(&mut self.buf);
        self.last_frame_offset = self.state.tail_end + start;
        let mut prev = head.map_or(NO_PREV, |(_, location)| location);
        for (i, ev) in (0u64..).zip(events) {
            let record_offset = self.state.tail_end + self.buf.len();
            let version = first_version + i;
            encode_record(
                &mut self.buf,
                &RecordView {
                    position: first_position + i,
                    version,
                    timestamp: ev.timestamp.unwrap_or(now),
                    prev,
                    id: ev.id,
                    stream,
                    event_type: &ev.event_type,
                    metadata: &ev.metadata,
                    payload: &ev.payload,
                },
            );
            prev = location(tail_seq, record_offset);
            self.locations.push(prev);
            // Later appends of the batch check their ids against these.
            if let (Some(id), true) = (ev.id, batch.more_follow) {
                batch.ids.insert(
                    id_key(stream, id),
                    (stream, id, first_position + i, version),
                );
            }
        }
        self.last_crc = finish_frame(
            &mut self.buf,
            start,
            first_position,
            self.durable.load(Ordering::Acquire),
            events.len() as u32,
            self.last_crc,
        );
        self.state.next_position += count;
        batch
            .heads
            .insert(stream, (slot, first_version + count - 1, prev));
        // A new stream takes its free hash once it is written, not when it is only checked.
        if let (Slot::Hashed(hash), None) = (slot, head) {
            batch.claimed.insert(hash);
        }
        self.accepted.push(Accepted {
            request: i,
            first_position,
            first_version,
            slot,
            below: head.map(|(last_version, last_location)| Head {
                last_version,
                last_location,
            }),
            locations: first_location..self.locations.len(),
        });
        // Placeholder; the real result is set once the batch is durable.
        Ok(AppendResult {
            first_position,
            last_position: first_position,
            first_version,
            last_version: first_version,
            deduplicated: false,
        })
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
