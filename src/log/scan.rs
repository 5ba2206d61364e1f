//! Walking the frames of one segment in order, checking that each continues the chain.

use crate::error::{Error, Result};
use crate::format::{
    location, read_frame, Damage, FrameFault, RecordView, SegmentEnd, SEGMENT_HEADER_LEN,
};
use crate::fs::segment::Segment;

/// Where a walk over a segment's frames stopped, and what it passed.
#[derive(Debug, Clone)]
pub struct Walked {
    /// Offset of the first frame that could not be read (the end of the data if `fault` is
    /// [`FrameFault::End`]).
    pub end: usize,
    /// Why the walk stopped there.
    pub fault: FrameFault,
    /// Position after the last event passed.
    pub next_position: u64,
    /// Durable position of the last frame passed (the segment's base position if none was).
    pub durable: u64,
    /// Offset and CRC of the last frame passed, if any.
    pub last_frame: Option<(usize, u32)>,
}

impl Walked {
    /// The walk of a sealed segment, which must end at the end of its data: anything else
    /// in a sealed segment is [`Error::Corrupt`].
    pub fn sealed(self, segment: &Segment) -> Result<Walked> {
        if self.fault != FrameFault::End {
            return Err(Error::corrupt(
                segment.path(),
                self.end as u64,
                format!("sealed segment: {}", self.fault),
            ));
        }
        Ok(self)
    }

    /// The last frame passed, as the end of the segment's data so far.
    pub fn segment_end(&self) -> SegmentEnd {
        let (offset, crc) = self.last_frame.unwrap_or((0, 0));
        SegmentEnd {
            end_position: self.next_position,
            last_frame_offset: offset as u32,
            last_frame_crc: crc,
            data_end: self.end as u32,
        }
    }

    /// CRC of the last frame passed, 0 if none (what the next frame must chain to).
    pub fn last_crc(&self) -> u32 {
        self.last_frame.map_or(0, |(_, crc)| crc)
    }
}

impl Walked {
    /// The state of a walk before the first frame of `segment`, whose first position is
    /// `first_position`.
    pub fn at_start(segment: &Segment, first_position: u64) -> Self {
        Walked {
            end: SEGMENT_HEADER_LEN,
            fault: FrameFault::End,
            next_position: first_position,
            durable: segment.base_position(),
            last_frame: None,
        }
    }
}

/// Walks the frames of `segment` from its header on, starting at `first_position`, and hands
/// every event to `visit` with its location: [`walk_frames_from`] the segment's start.
pub fn walk_frames(
    segment: &Segment,
    first_position: u64,
    visit: impl FnMut(&RecordView<'_>, u64) -> std::result::Result<(), Damage>,
) -> Result<Walked> {
    walk_frames_from(segment, Walked::at_start(segment, first_position), visit)
}

/// [`walk_frames`] over the bytes of `segment` below `limit` only (a snapshot's end of the
/// tail, which a writer goes on writing past): at `limit` the walk meets the end.
pub fn walk_frames_below(
    segment: &Segment,
    first_position: u64,
    limit: usize,
    visit: impl FnMut(&RecordView<'_>, u64) -> std::result::Result<(), Damage>,
) -> Result<Walked> {
    let start = Walked::at_start(segment, first_position);
    walk_frames_between(segment, start, limit, visit)
}

/// Walks the frames of `segment` from where `walked` stopped (a frame boundary, with the
/// last frame passed and its durable position), and hands every event to `visit` with its
/// location. Stops at the first frame that is missing,
/// incomplete, damaged or does not continue the chain (its position, the previous frame's
/// CRC, a durable position that never goes down and starts at the segment's base): that is
/// the returned fault. A record that is inconsistent inside an intact frame, or that `visit`
/// rejects, is [`Error::Corrupt`].
pub fn walk_frames_from(
    segment: &Segment,
    walked: Walked,
    visit: impl FnMut(&RecordView<'_>, u64) -> std::result::Result<(), Damage>,
) -> Result<Walked> {
    walk(segment, segment.bytes(), walked, visit)
}

/// [`walk_frames_from`] over the bytes of `segment` below `limit` only: continues a walk of
/// the tail up to a snapshot's end.
pub fn walk_frames_between(
    segment: &Segment,
    walked: Walked,
    limit: usize,
    visit: impl FnMut(&RecordView<'_>, u64) -> std::result::Result<(), Damage>,
) -> Result<Walked> {
    let bytes = segment.bytes().get(..limit).unwrap_or_default();
    walk(segment, bytes, walked, visit)
}

/// [`walk_frames_from`] over `bytes`, the whole of `segment` or a prefix of it.
fn walk(
    segment: &Segment,
    bytes: &[u8],
    mut walked: Walked,
    mut visit: impl FnMut(&RecordView<'_>, u64) -> std::result::Result<(), Damage>,
) -> Result<Walked> {
    loop {
        let offset = walked.end;
        let frame = match read_frame(bytes.get(offset..).unwrap_or_default()) {
            Ok(frame) => frame,
            Err(fault) => {
                if let (FrameFault::End, Some(end)) = (&fault, segment.original_end()) {
                    // Events removed from the end of a rewritten segment leave a hole there.
                    walked.next_position = walked.next_position.max(end.end_position);
                }
                walked.fault = fault;
                return Ok(walked);
            }
        };
        let h = frame.header;
        // Positions jump over the events a rewrite removed, and only there.
        let hole = segment.trailer().is_some() && h.first_position > walked.next_position;
        let chain_break = if h.first_position != walked.next_position && !hole {
            Some(Damage::Mismatch {
                what: "frame's first position",
                found: h.first_position,
                expected: walked.next_position,
            })
        } else if h.prev_crc != walked.last_crc() {
            Some(Damage::Field {
                what: "frame",
                problem: "does not chain to the previous frame's checksum (a stale frame)",
            })
        } else if h.durable < walked.durable {
            Some(Damage::Mismatch {
                what: "frame's durable position (at least the previous frame's)",
                found: h.durable,
                expected: walked.durable,
            })
        } else {
            None
        };
        if let Some(damage) = chain_break {
            walked.fault = FrameFault::Invalid(damage);
            return Ok(walked);
        }
        let mut records = frame.records();
        loop {
            let record_offset = offset + records.offset();
            let checked = match records.next() {
                None => break,
                Some(Err(reason)) => Err(reason),
                Some(Ok(view)) => {
                    // Indexes name records by where they were first written.
                    let original = segment.original_offset(record_offset)?;
                    visit(&view, location(segment.seq(), original))
                }
            };
            if let Err(reason) = checked {
                return Err(Error::corrupt(segment.path(), record_offset as u64, reason));
            }
        }
        walked.next_position = frame.end_position();
        walked.durable = h.durable;
        walked.last_frame = Some((offset, h.crc));
        walked.end = offset + frame.bytes.len();
    }
}

/// Whether `segment` holds the frame `end` names: intact, at its offset, with its CRC, ending
/// at its end position and data end. One frame read: how opening checks a side file or the
/// index snapshot against the log without scanning it.
///
/// In a rewritten segment that is its last frame as rewritten, ending at the position where
/// the original ended (or no frame at all, if every event went): a side file written before
/// the rewrite does not match.
pub fn holds_frame(segment: &Segment, end: &SegmentEnd) -> bool {
    let original = segment.original_end();
    if original.is_some() && end.last_frame_offset == 0 {
        return original.is_some_and(|o| o.end_position == end.end_position)
            && end.data_end as usize == SEGMENT_HEADER_LEN
            && segment.is_empty();
    }
    let at = segment.bytes().get(end.last_frame_offset as usize..);
    match at.map(read_frame) {
        Some(Ok(frame)) => {
            let end_position = original.map_or(frame.end_position(), |o| o.end_position);
            frame.header.crc == end.last_frame_crc
                && end_position == end.end_position
                && end.last_frame_offset as usize + frame.bytes.len() == end.data_end as usize
        }
        _ => false,
    }
}

/// Whether `segment` is what an index snapshot that names `end` as its last frame saw: it
/// holds that frame ([`holds_frame`]), or it was rewritten since from a segment that ended
/// there (every location the snapshot holds is an original one, which the rewritten segment
/// maps). Side files are checked with [`holds_frame`] alone: one written before a rewrite
/// lists removed events.
pub fn covers(segment: &Segment, end: &SegmentEnd) -> bool {
    segment.original_end().as_ref() == Some(end) || holds_frame(segment, end)
}

/// Whether no frame follows the data end of `end` in `segment` (as in a sealed segment that
/// ends there). A rewritten segment ends at its original end too.
pub fn ends_at(segment: &Segment, end: &SegmentEnd) -> bool {
    if segment.original_end().as_ref() == Some(end) {
        return true;
    }
    let rest = segment.bytes().get(end.data_end as usize..);
    matches!(read_frame(rest.unwrap_or_default()), Err(FrameFault::End))
}
