//! A [`Snapshot`] of the committed log: the segments and where the committed data ends. Readers
//! take one (a few microseconds under a read lock) and then read the mapped segments without
//! any lock.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::{decode_record, split_location, RecordView, NO_PREV};
use crate::fs::segment::Segment;

/// The committed state of the log at one moment.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// Every segment; the last one is the tail.
    pub segments: Arc<Vec<Arc<Segment>>>,
    /// Offset in the tail segment after its last committed frame.
    pub tail_end: usize,
    /// Positions below this one are committed.
    pub next_position: u64,
}

impl Snapshot {
    /// Index of the segment holding `position` (the last segment if it is past the end).
    pub fn segment_of(&self, position: u64) -> usize {
        self.segments
            .partition_point(|s| s.base_position() <= position)
            .saturating_sub(1)
    }

    /// Walks `stream`'s back-pointer chain from its event at `location` to its first event,
    /// or to where compaction or erasure removed the ones before, handing `visit` each event
    /// and its location, newest first. A back pointer that leads to another stream is
    /// [`Error::Corrupt`].
    pub fn walk_chain(
        &self,
        stream: &str,
        mut location: u64,
        mut visit: impl FnMut(&RecordView<'_>, u64),
    ) -> Result<()> {
        while location != NO_PREV {
            let Some((view, segment)) = self.kept_record_at(location)? else {
                break;
            };
            if view.stream != stream {
                let offset = split_location(location).1 as u64;
                let reason = format!("a back pointer of stream {stream:?} leads to another stream");
                return Err(Error::corrupt(segment.path(), offset, reason));
            }
            visit(&view, location);
            location = view.prev;
        }
        Ok(())
    }

    /// Index in `segments` of the segment numbered `seq`.
    fn segment_index(&self, seq: u64) -> Result<usize> {
        let first = self.segments[0].seq();
        seq.checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.segments.len())
            .ok_or_else(|| {
                Error::corrupt(
                    self.segments[0].path(),
                    0,
                    format!("a back pointer names segment {seq}, which the store does not have"),
                )
            })
    }

    /// The record at `location`, its checksum verified, and the segment holding it; `None`
    /// if compaction or erasure removed it.
    pub fn kept_record_at(&self, location: u64) -> Result<Option<(RecordView<'_>, &Segment)>> {
        let (seq, original) = split_location(location);
        let index = self.segment_index(seq)?;
        let segment = &self.segments[index];
        let Some(offset) = segment.locate(original)? else {
            return Ok(None);
        };
        let bytes = segment
            .bytes()
            .get(offset..self.limit(index))
            .unwrap_or_default();
        match decode_record(bytes, true) {
            Ok((view, _)) => Ok(Some((view, segment))),
            Err(reason) => Err(Error::corrupt(segment.path(), offset as u64, reason)),
        }
    }

    /// Whether the record at `location` belongs to `stream`; if it does, it must be the
    /// stream's event `version` (the version an index holds for it), else the index or the
    /// log is damaged: [`Error::Corrupt`].
    /// A removed record belongs to no stream.
    pub fn is_event_at(&self, location: u64, stream: &str, version: u64) -> Result<bool> {
        let Some((view, segment)) = self.kept_record_at(location)? else {
            return Ok(false);
        };
        if view.stream != stream {
            return Ok(false);
        }
        if view.version != version {
            return Err(Error::corrupt(
                segment.path(),
                split_location(location).1 as u64,
                format!(
                    "the index holds version {version} of stream {stream:?} here, the record \
                     version {}",
                    view.version
                ),
            ));
        }
        Ok(true)
    }

    /// Offset after the readable bytes of segment `index`.
    pub fn limit(&self, index: usize) -> usize {
        if index + 1 == self.segments.len() {
            self.tail_end
        } else {
            self.segments[index].bytes().len()
        }
    }
}
