//! [`ReadAll`]: every event from a position on, in position order.
//!
//! Readers take a [`Snapshot`] (a few microseconds under a read lock) and then read the mapped
//! segments without any lock. Every frame's checksum is verified before any of its events is
//! returned.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::format::{
    peek_frame_header, read_frame, FrameFault, RecordCursor, RecordView, SEGMENT_HEADER_LEN,
};
use crate::log::Snapshot;
use crate::upcast::Upcasters;

/// Iterator over every event from a position on, in position order: see
/// [`Store::read_all`](crate::Store::read_all).
///
/// It reads the events committed when it was created. After an error it yields nothing more.
#[derive(Debug)]
pub struct ReadAll {
    snapshot: Snapshot,
    at: Position,
    /// `None` without upcasters: then a read does no work for them per event (it clones
    /// this for each event it yields, to apply them beside the view it borrows).
    upcasters: Option<Upcasters>,
}

/// Where a [`ReadAll`] is in its snapshot.
#[derive(Debug)]
struct Position {
    /// Position of the next event to return.
    from: u64,
    /// Position of the next record the cursor will decode.
    next: u64,
    segment: usize,
    /// Start and length of the current frame in the current segment.
    frame_start: usize,
    frame_len: usize,
    cursor: Option<RecordCursor>,
    /// An error ended the read.
    failed: bool,
}

impl ReadAll {
    pub(crate) fn new(snapshot: Snapshot, from: u64) -> Self {
        let segment = snapshot.segment_of(from);
        let mut at = Position {
            from,
            next: snapshot.segments[segment].base_position(),
            segment,
            frame_start: SEGMENT_HEADER_LEN,
            frame_len: 0,
            cursor: None,
            failed: false,
        };
        at.skip_frames_before_from(&snapshot);
        ReadAll {
            snapshot,
            at,
            upcasters: None,
        }
    }

    /// The read with `upcasters` applied to the events it yields.
    pub(crate) fn upcasting(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = (!upcasters.is_empty()).then_some(upcasters);
        self
    }

    /// Position of the next event this read would return.
    pub(crate) fn next_position(&self) -> u64 {
        self.at.next.max(self.at.from)
    }

    /// Continues the read into `newer`, a later snapshot of the same log (it holds every
    /// segment and byte of the current one), without starting over.
    pub(crate) fn extend(&mut self, newer: Snapshot) {
        let at = self.at.segment;
        let same = match (self.snapshot.segments.get(at), newer.segments.get(at)) {
            (Some(old), Some(new)) => Arc::ptr_eq(old, new),
            _ => false,
        };
        if same || self.at.failed {
            self.snapshot = newer;
        } else {
            // The segment being read was rewritten (compaction or erasure) and its offsets
            // changed: find the next position anew, positions never change.
            let upcasters = self.upcasters.take();
            *self = ReadAll::new(newer, self.next_position());
            self.upcasters = upcasters;
        }
    }

    /// The next event, decoded in place in the mapped segment (checksums verified, nothing
    /// allocated): the lending form of [`Iterator::next`].
    pub(crate) fn next_view(&mut self) -> Option<Result<RecordView<'_>>> {
        self.next_located().map(|r| r.map(|(view, _)| view))
    }

    /// [`ReadAll::next_view`], with where the record is: the index of its segment in
    /// [`ReadAll::snapshot`] and its offset there.
    pub(crate) fn next_located(&mut self) -> Option<Result<(RecordView<'_>, (usize, usize))>> {
        let snapshot = &self.snapshot;
        let at = &mut self.at;
        loop {
            if at.failed || at.next >= snapshot.next_position {
                return None;
            }
            let Some(cursor) = at.cursor.as_mut() else {
                if let Err(e) = at.next_frame(snapshot) {
                    return Some(Err(e));
                }
                continue;
            };
            let segment = &snapshot.segments[at.segment];
            let frame = &segment.bytes()[at.frame_start..at.frame_start + at.frame_len];
            let record_offset = at.frame_start + cursor.offset();
            match cursor.next(frame) {
                None => at.cursor = None,
                Some(Err(reason)) => return Some(Err(at.corrupt(snapshot, record_offset, reason))),
                Some(Ok(view)) => {
                    at.next += 1;
                    if view.position >= at.from {
                        return Some(Ok((view, (at.segment, record_offset))));
                    }
                }
            }
        }
    }

    /// The snapshot this read reads.
    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }
}

impl Position {
    /// Hops over whole frames that end before `from`, reading only their headers. A damaged
    /// header stops the hopping; the frame is then verified (and reported) as usual.
    fn skip_frames_before_from(&mut self, snapshot: &Snapshot) {
        let segment = &snapshot.segments[self.segment];
        let holes = segment.trailer().is_some();
        let limit = snapshot.limit(self.segment);
        let mut offset = SEGMENT_HEADER_LEN;
        while let Some(h) = segment
            .bytes()
            .get(offset..limit)
            .and_then(peek_frame_header)
        {
            let continues =
                h.first_position == self.next || (holes && h.first_position > self.next);
            if !continues || h.end_position() > self.from {
                break;
            }
            self.next = h.end_position();
            offset += h.len as usize;
        }
        self.frame_start = offset;
    }

    /// Ends the read with a [`Error::Corrupt`] at `offset` of the current segment.
    fn corrupt(&mut self, snapshot: &Snapshot, offset: usize, reason: impl ToString) -> Error {
        self.failed = true;
        let path = snapshot.segments[self.segment].path();
        Error::corrupt(path, offset as u64, reason)
    }

    /// Moves the cursor to the next frame, verifying it. In a rewritten segment positions
    /// may jump (over removed events) from frame to frame and at its end.
    fn next_frame(&mut self, snapshot: &Snapshot) -> Result<()> {
        let mut offset = self.frame_start + self.frame_len;
        // On to the next segment at the end of this one (a rewritten one may end early, or
        // hold no frame at all).
        while let Some(following) = snapshot.segments.get(self.segment + 1) {
            let segment = &snapshot.segments[self.segment];
            let holes = segment.trailer().is_some();
            let next_base = following.base_position();
            if self.next != next_base && !(holes && offset >= segment.bytes().len()) {
                break;
            }
            self.segment += 1;
            self.next = next_base;
            offset = SEGMENT_HEADER_LEN;
        }
        if self.next >= snapshot.next_position {
            // The holes ran to the end of what is committed.
            (self.frame_start, self.frame_len) = (offset, 0);
            return Ok(());
        }
        let segment = &snapshot.segments[self.segment];
        let holes = segment.trailer().is_some();
        let limit = snapshot.limit(self.segment);
        let data = segment.bytes().get(offset..limit).unwrap_or_default();
        match read_frame(data) {
            Ok(frame)
                if frame.header.first_position == self.next
                    || (holes && frame.header.first_position > self.next) =>
            {
                self.next = frame.header.first_position;
                self.frame_start = offset;
                self.frame_len = frame.bytes.len();
                self.cursor = Some(RecordCursor::new(&frame.header));
                Ok(())
            }
            Ok(frame) => {
                let reason = format!(
                    "frame starts at position {}, position {} expected",
                    frame.header.first_position, self.next
                );
                Err(self.corrupt(snapshot, offset, reason))
            }
            Err(FrameFault::End) => {
                let reason = format!("segment ends before position {}", self.next);
                Err(self.corrupt(snapshot, offset, reason))
            }
            Err(fault) => Err(self.corrupt(snapshot, offset, fault.to_string())),
        }
    }
}

/// After `None` (the end of the snapshot, or an error) it yields nothing more.
impl std::iter::FusedIterator for ReadAll {}

impl Iterator for ReadAll {
    type Item = Result<RecordedEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        let upcasters = self.upcasters.clone();
        self.next_view().map(|view| {
            view.and_then(|view| match &upcasters {
                Some(upcasters) => upcasters.record(&view),
                None => Ok(RecordedEvent::from_view(&view)),
            })
        })
    }
}
