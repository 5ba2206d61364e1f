//! The read path: a snapshot of the committed log and the iterator over it in position order.
//!
//! Readers take a [`Snapshot`] (a few microseconds under a read lock) and then read the mapped
//! segments without any lock. Every frame's checksum is verified before any of its events is
//! returned.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::format::{
    decode_record, peek_frame_header, read_frame, split_location, FrameFault, RecordCursor,
    RecordView, SEGMENT_HEADER_LEN,
};
use crate::segment::Segment;

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
    fn segment_of(&self, position: u64) -> usize {
        self.segments
            .partition_point(|s| s.base_position() <= position)
            .saturating_sub(1)
    }

    /// The record at `location`, its checksum verified, and the segment holding it.
    pub fn record_at(&self, location: u64) -> Result<(RecordView<'_>, &Segment)> {
        let (seq, offset) = split_location(location);
        let first = self.segments[0].seq();
        let index = seq
            .checked_sub(first)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < self.segments.len());
        let Some(index) = index else {
            let path = self.segments[0].path();
            return Err(Error::corrupt(
                path,
                0,
                format!("a back pointer names segment {seq}, which the store does not have"),
            ));
        };
        let segment = &self.segments[index];
        let bytes = segment
            .bytes()
            .get(offset..self.limit(index))
            .unwrap_or_default();
        match decode_record(bytes, true) {
            Ok((view, _)) => Ok((view, segment)),
            Err(reason) => Err(Error::corrupt(segment.path(), offset as u64, reason)),
        }
    }

    /// Whether the record at `location` belongs to `stream`.
    pub fn is_stream_at(&self, location: u64, stream: &str) -> Result<bool> {
        Ok(self.record_at(location)?.0.stream == stream)
    }

    /// Offset after the readable bytes of segment `index`.
    fn limit(&self, index: usize) -> usize {
        if index + 1 == self.segments.len() {
            self.tail_end
        } else {
            self.segments[index].capacity()
        }
    }
}

/// Iterator over every event from a position on, in position order: see
/// [`Store::read_all`](crate::Store::read_all).
///
/// It reads the events committed when it was created. After an error it yields nothing more.
#[derive(Debug)]
pub struct ReadAll {
    snapshot: Snapshot,
    /// Position of the next event to return.
    from: u64,
    /// Position of the next record the cursor will decode.
    next: u64,
    segment: usize,
    /// Start and length of the current frame in the current segment.
    frame_start: usize,
    frame_len: usize,
    cursor: Option<RecordCursor>,
    done: bool,
}

impl ReadAll {
    pub(crate) fn new(snapshot: Snapshot, from: u64) -> Self {
        let segment = snapshot.segment_of(from);
        let mut iter = ReadAll {
            next: snapshot.segments[segment].base_position(),
            snapshot,
            from,
            segment,
            frame_start: SEGMENT_HEADER_LEN,
            frame_len: 0,
            cursor: None,
            done: false,
        };
        iter.skip_frames_before_from();
        iter
    }

    /// Hops over whole frames that end before `from`, reading only their headers. A damaged
    /// header stops the hopping; the frame is then verified (and reported) as usual.
    fn skip_frames_before_from(&mut self) {
        let segment = &self.snapshot.segments[self.segment];
        let limit = self.snapshot.limit(self.segment);
        let mut offset = SEGMENT_HEADER_LEN;
        while let Some(h) = segment
            .bytes()
            .get(offset..limit)
            .and_then(peek_frame_header)
        {
            if h.first_position != self.next || h.end_position() > self.from {
                break;
            }
            self.next = h.end_position();
            offset += h.len as usize;
        }
        self.frame_start = offset;
    }

    fn corrupt(
        &mut self,
        offset: usize,
        reason: impl Into<String>,
    ) -> Option<Result<RecordedEvent>> {
        self.done = true;
        let path = self.snapshot.segments[self.segment].path();
        Some(Err(Error::corrupt(path, offset as u64, reason)))
    }

    /// Moves the cursor to the next frame, verifying it. `Err` carries the error to return.
    fn next_frame(&mut self) -> std::result::Result<(), Option<Result<RecordedEvent>>> {
        let mut offset = self.frame_start + self.frame_len;
        if self.segment + 1 < self.snapshot.segments.len()
            && self.next == self.snapshot.segments[self.segment + 1].base_position()
        {
            self.segment += 1;
            offset = SEGMENT_HEADER_LEN;
        }
        let segment = Arc::clone(&self.snapshot.segments[self.segment]);
        let limit = self.snapshot.limit(self.segment);
        let data = segment.bytes().get(offset..limit).unwrap_or_default();
        match read_frame(data) {
            Ok(frame) if frame.header.first_position == self.next => {
                self.frame_start = offset;
                self.frame_len = frame.bytes.len();
                self.cursor = Some(RecordCursor::new(&frame.header));
                Ok(())
            }
            Ok(frame) => Err(self.corrupt(
                offset,
                format!(
                    "frame starts at position {}, position {} expected",
                    frame.header.first_position, self.next
                ),
            )),
            Err(FrameFault::End) => Err(self.corrupt(
                offset,
                format!("segment ends before position {}", self.next),
            )),
            Err(fault) => Err(self.corrupt(offset, fault.describe())),
        }
    }
}

impl Iterator for ReadAll {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done || self.next >= self.snapshot.next_position {
                self.done = true;
                return None;
            }
            let Some(cursor) = self.cursor.as_mut() else {
                if let Err(out) = self.next_frame() {
                    return out;
                }
                continue;
            };
            let segment = &self.snapshot.segments[self.segment];
            let frame = &segment.bytes()[self.frame_start..self.frame_start + self.frame_len];
            let record_offset = self.frame_start + cursor.offset();
            match cursor.next(frame) {
                None => self.cursor = None,
                Some(Err(reason)) => return self.corrupt(record_offset, reason),
                Some(Ok(view)) => {
                    self.next += 1;
                    if view.position >= self.from {
                        return Some(Ok(RecordedEvent::from_view(&view)));
                    }
                }
            }
        }
    }
}
