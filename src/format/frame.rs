//! One append is one frame, written by one `write`: after a crash a frame is either complete
//! and intact, or it is detected and cut. Layout ([`FRAME_HEADER_LEN`] bytes of header):
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 4 | frame length, header included | skip to the next frame; 0 marks the end |
//! | 4 | 4 | CRC-32 (IEEE) of bytes 0..4 and 8..length | torn or damaged frames are detected |
//! | 8 | 8 | first position | a valid frame in the wrong place is caught |
//! | 16 | 8 | durable position: every event below it was on stable storage when the frame was written | tells a write lost in a crash from damage to synced data (below) |
//! | 24 | 4 | event count | |
//! | 28 | 4 | CRC of the previous frame in the segment (0 for the first) | a missing or stale frame breaks the chain |
//! | 32 | .. | event records | |
//!
//! A frame is at most [`MAX_FRAME_LEN`] bytes. Offsets: [`FRAME_LEN_AT`], [`FRAME_CRC_AT`],
//! [`FRAME_FIRST_POSITION_AT`], [`FRAME_DURABLE_AT`], [`FRAME_COUNT_AT`], [`FRAME_PREV_CRC_AT`].
//!
//! The durable position never exceeds the frame's first position and never goes down from one
//! frame to the next; the first frame of a segment other than the first has one at least the
//! segment's base position (the previous segment was synced before it was created). Recovery
//! uses it to decide what a bad frame in the tail means; the rule and why it is sound are in
//! `docs/design.md` ("Recovery").

use std::fmt;

use byteorder::{ByteOrder, LittleEndian as LE};

use super::damage::Damage;

use super::record::{decode_record, RecordView, RECORD_HEADER_LEN};

/// Bytes in a batch frame header.
pub const FRAME_HEADER_LEN: usize = 32;
/// Offset of a frame's length in its header.
pub const FRAME_LEN_AT: usize = 0;
/// Offset of a frame's CRC in its header.
pub const FRAME_CRC_AT: usize = 4;
/// Offset of a frame's first position in its header.
pub const FRAME_FIRST_POSITION_AT: usize = 8;
/// Offset of a frame's durable position in its header.
pub const FRAME_DURABLE_AT: usize = 16;
/// Offset of a frame's event count in its header.
pub const FRAME_COUNT_AT: usize = 24;
/// Offset of the previous frame's CRC in a frame header.
pub const FRAME_PREV_CRC_AT: usize = 28;

const _: () = assert!(FRAME_PREV_CRC_AT + 4 == FRAME_HEADER_LEN);
const _: () = assert!(FRAME_DURABLE_AT + 8 == FRAME_COUNT_AT);
/// The largest frame (one append) in bytes.
pub const MAX_FRAME_LEN: usize = 1 << 30;

/// The fields of a batch frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Length of the whole frame, header included.
    pub len: u32,
    /// CRC-32 stored in the frame.
    pub crc: u32,
    /// Global position of the frame's first event.
    pub first_position: u64,
    /// Every event below this position was on stable storage when the frame was written.
    pub durable: u64,
    /// Number of events in the frame.
    pub count: u32,
    /// CRC of the previous frame of the segment, 0 for the first.
    pub prev_crc: u32,
}

impl FrameHeader {
    /// Reads the header fields; `b` must hold at least [`FRAME_HEADER_LEN`] bytes.
    fn read(b: &[u8]) -> Self {
        FrameHeader {
            len: LE::read_u32(&b[FRAME_LEN_AT..]),
            crc: LE::read_u32(&b[FRAME_CRC_AT..]),
            first_position: LE::read_u64(&b[FRAME_FIRST_POSITION_AT..]),
            durable: LE::read_u64(&b[FRAME_DURABLE_AT..]),
            count: LE::read_u32(&b[FRAME_COUNT_AT..]),
            prev_crc: LE::read_u32(&b[FRAME_PREV_CRC_AT..]),
        }
    }
}

/// Why no frame could be read at some offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameFault {
    /// A zero length field (or nothing but zeros where a header would be): the end of the data.
    End,
    /// The frame's length runs past the bytes available: a write cut short.
    Incomplete {
        /// The length the frame claims.
        claimed: u64,
        /// The bytes available from the frame's start.
        available: u64,
    },
    /// The frame is complete by its length but not intact, or not where it belongs.
    Invalid(Damage),
}

impl fmt::Display for FrameFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameFault::End => f.write_str("end of data"),
            FrameFault::Incomplete { claimed, available } => write!(
                f,
                "frame claims {claimed} bytes but only {available} follow (incomplete write)"
            ),
            FrameFault::Invalid(damage) => damage.fmt(f),
        }
    }
}

/// A complete frame whose checksum matched. Its records are decoded by [`Frame::records`].
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// The frame's header.
    pub header: FrameHeader,
    /// The whole frame, header included.
    pub bytes: &'a [u8],
}

/// Reads and verifies the frame at the start of `data` (which runs to the end of the readable
/// region). Records are checked when iterated.
pub fn read_frame(data: &[u8]) -> Result<Frame<'_>, FrameFault> {
    if data.len() < FRAME_HEADER_LEN {
        return if data.iter().all(|&b| b == 0) {
            Err(FrameFault::End)
        } else {
            Err(FrameFault::Incomplete {
                claimed: FRAME_HEADER_LEN as u64,
                available: data.len() as u64,
            })
        };
    }
    let header = FrameHeader::read(data);
    let len = header.len as usize;
    if len == 0 {
        return Err(FrameFault::End);
    }
    if len > data.len() {
        return Err(FrameFault::Incomplete {
            claimed: len as u64,
            available: data.len() as u64,
        });
    }
    if !(FRAME_HEADER_LEN + RECORD_HEADER_LEN..=MAX_FRAME_LEN).contains(&len) {
        return Err(FrameFault::Invalid(Damage::Length {
            what: "frame",
            length: len as u64,
        }));
    }
    let bytes = &data[..len];
    let actual = frame_crc(bytes);
    if actual != header.crc {
        return Err(FrameFault::Invalid(Damage::Checksum {
            what: "frame",
            stored: header.crc,
            computed: actual,
        }));
    }
    if header.count == 0 {
        return Err(FrameFault::Invalid(Damage::Field {
            what: "frame",
            problem: "holds no events",
        }));
    }
    if header.durable > header.first_position {
        return Err(FrameFault::Invalid(Damage::Mismatch {
            what: "frame's durable position (at most its first position)",
            found: header.durable,
            expected: header.first_position,
        }));
    }
    Ok(Frame { header, bytes })
}

fn frame_crc(frame: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&frame[..FRAME_CRC_AT]);
    h.update(&frame[FRAME_FIRST_POSITION_AT..]);
    h.finalize()
}

impl<'a> Frame<'a> {
    /// The frame's records, each checked for consistency with the frame; see [`RecordCursor`].
    pub fn records(&self) -> Records<'a> {
        Records::new(self.bytes, &self.header)
    }

    /// Global position after the frame's last event.
    pub fn end_position(&self) -> u64 {
        self.header.end_position()
    }
}

impl FrameHeader {
    /// Global position after the frame's last event.
    pub fn end_position(&self) -> u64 {
        self.first_position.saturating_add(u64::from(self.count))
    }
}

/// Reads the header of the frame at the start of `data` without verifying the frame: for
/// skipping frames on the way to a position. `None` if no plausible header is there, or if
/// the frame runs past `data`.
pub fn peek_frame_header(data: &[u8]) -> Option<FrameHeader> {
    plausible_frame_header(data).filter(|h| h.len as usize <= data.len())
}

/// Reads the header at the start of `data` if its length and event count are possible,
/// without looking at the rest of the frame (which may run past `data`).
pub fn plausible_frame_header(data: &[u8]) -> Option<FrameHeader> {
    let header = FrameHeader::read(data.get(..FRAME_HEADER_LEN)?);
    let len = header.len as usize;
    ((FRAME_HEADER_LEN + RECORD_HEADER_LEN..=MAX_FRAME_LEN).contains(&len) && header.count > 0)
        .then_some(header)
}

/// Starts a frame at the end of `buf`: reserves its header and returns the frame's start.
pub fn begin_frame(buf: &mut Vec<u8>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    start
}

/// Completes the frame that starts at `start` and runs to the end of `buf`: writes its header
/// and returns its CRC. The caller keeps the frame below [`MAX_FRAME_LEN`].
pub fn finish_frame(
    buf: &mut [u8],
    start: usize,
    first_position: u64,
    durable: u64,
    count: u32,
    prev_crc: u32,
) -> u32 {
    let frame = &mut buf[start..];
    let len = frame.len() as u32;
    LE::write_u32(&mut frame[FRAME_LEN_AT..], len);
    LE::write_u64(&mut frame[FRAME_FIRST_POSITION_AT..], first_position);
    LE::write_u64(&mut frame[FRAME_DURABLE_AT..], durable);
    LE::write_u32(&mut frame[FRAME_COUNT_AT..], count);
    LE::write_u32(&mut frame[FRAME_PREV_CRC_AT..], prev_crc);
    let crc = frame_crc(frame);
    LE::write_u32(&mut frame[FRAME_CRC_AT..], crc);
    crc
}

/// Where the next record of a verified frame starts. Holds no borrow, so a reader can keep it
/// next to the segment that owns the bytes; [`Records`] pairs it with the frame's bytes.
///
/// Each record must carry the position its place in the frame gives it, and the records must
/// fill the frame exactly. After the first error the cursor yields nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCursor {
    offset: usize,
    index: u32,
    count: u32,
    first_position: u64,
    failed: bool,
}

impl RecordCursor {
    /// A cursor at the first record of the frame with this header.
    pub fn new(header: &FrameHeader) -> Self {
        RecordCursor {
            offset: FRAME_HEADER_LEN,
            index: 0,
            count: header.count,
            first_position: header.first_position,
            failed: false,
        }
    }

    /// Offset within the frame of the record that will be read next (or that failed).
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The next record of `frame` (the whole frame, header included), or an error saying what
    /// is inconsistent; `None` after the last record or after an error.
    pub fn next<'a>(&mut self, frame: &'a [u8]) -> Option<Result<RecordView<'a>, Damage>> {
        if self.failed {
            return None;
        }
        let rest = frame.get(self.offset..).unwrap_or_default();
        if self.index == self.count {
            if rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(Damage::Trailing {
                what: "frame's records",
                bytes: rest.len() as u64,
            }));
        }
        let expected = self.first_position.wrapping_add(u64::from(self.index));
        let result = decode_record(rest, false).and_then(|(view, len)| {
            if view.position == expected {
                Ok((view, len))
            } else {
                Err(Damage::Mismatch {
                    what: "record position",
                    found: view.position,
                    expected,
                })
            }
        });
        match result {
            Ok((view, len)) => {
                self.offset += len;
                self.index += 1;
                Some(Ok(view))
            }
            Err(reason) => {
                self.failed = true;
                Some(Err(reason))
            }
        }
    }
}

/// Iterator over the records of one frame; see [`Frame::records`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    frame: &'a [u8],
    cursor: RecordCursor,
}

impl<'a> Records<'a> {
    /// The records of `frame` (the whole frame, header included), whose header is `header`.
    pub(crate) fn new(frame: &'a [u8], header: &FrameHeader) -> Self {
        Records {
            frame,
            cursor: RecordCursor::new(header),
        }
    }

    /// Offset within the frame of the record that will be read next (or that failed).
    pub fn offset(&self) -> usize {
        self.cursor.offset()
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>, Damage>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next(self.frame)
    }
}
