//! The on-disk format, all of it. Every integer is little endian and fixed width.
//!
//! # Directory
//!
//! A store is a directory holding:
//!
//! | file | what it holds |
//! |---|---|
//! | `LOCK` | empty; an exclusive OS file lock on it marks the store as open |
//! | `{base:020}.log` | a segment: the events from global position `base` on, e.g. `00000000000000000000.log` |
//! | `{base:020}.idx` | the index side file of a sealed segment (see below) |
//! | `MANIFEST` | names the tail segment, so that a lost segment file is noticed (see below) |
//! | `checkpoints/{name}` | a consumer checkpoint (see below) |
//! | `{base:020}.log.tmp`, `{base:020}.idx.tmp`, `MANIFEST.tmp`, `checkpoints/.{name}.tmp` | a file being created; deleted on open (a crash left it half made) |
//!
//! Opening touches no other file: anything else in the directory is left alone.
//!
//! Segment names are zero-padded to 20 digits so that names sort like positions. Only the last
//! segment (the *tail*) is written; the others are *sealed* and never change. A new segment is
//! written under a `.tmp` name, synced, renamed into place, and the directory synced, so a
//! `.log` file always has a complete header.
//!
//! # Segment
//!
//! A segment is a [`SEGMENT_HEADER_LEN`]-byte header followed by batch frames back to back. The
//! file is created at its full size (`Options::segment_size`, or larger for one batch that does
//! not fit in a normal segment) so that appending never changes the file's size and
//! `fdatasync` has no size to update. The unused remainder is zeros: a frame length of zero
//! marks the end of the data.
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALSEG` | recognise a segment |
//! | 8 | 4 | format version ([`FORMAT_VERSION`]) | refuse formats this build cannot read |
//! | 12 | 4 | CRC-32 of bytes 0..12 and 16..32 | a damaged header is detected, not trusted |
//! | 16 | 8 | base position | first global position in the segment; must match the file name |
//! | 24 | 8 | sequence number | 0, 1, 2, ...: the segment's ordinal, used by record locations |
//!
//! # Batch frame
//!
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
//!
//! # Event record
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 4 | record length, header included | |
//! | 4 | 4 | CRC-32 of bytes 8..length | a record reached by its location (stream reads) is verified alone |
//! | 8 | 8 | global position | |
//! | 16 | 8 | stream version | |
//! | 24 | 8 | timestamp, microseconds since the Unix epoch | |
//! | 32 | 8 | location of the previous event of the same stream, or `u64::MAX` | back-pointer chain for stream reads |
//! | 40 | 1 | flags: bit 0 = an id follows the header; other bits zero | |
//! | 41 | 1 | stream name length (1..=255) | |
//! | 42 | 1 | event type length (1..=255) | |
//! | 43 | 1 | reserved, zero | |
//! | 44 | 4 | metadata length | |
//! | 48 | 4 | payload length | |
//! | 52 | 16 | event id (only if flag bit 0) | idempotent appends |
//! | .. | .. | stream name (UTF-8), event type (UTF-8), metadata, payload | |
//!
//! A *location* is `segment sequence number << 32 | byte offset of the record in the segment`.
//!
//! # Index side file
//!
//! Written for each segment when it is sealed (by a background thread) so that opening a store
//! reads these files instead of scanning the segments. It is a cache: both sections are
//! checksummed, its header must match the segment as it is, and a missing, stale or damaged
//! file is rebuilt from the segment on open (and reported). Header, 88 bytes:
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALIDX` | |
//! | 8 | 4 | format version (2) | |
//! | 12 | 4 | CRC-32 of bytes 16..ids offset (header and streams) | |
//! | 16 | 8 | segment base position | must match the segment |
//! | 24 | 8 | segment sequence number | must match the segment |
//! | 32 | 8 | end position (after the segment's last event) | the next segment must start here |
//! | 40 | 8 | reserved, zero | |
//! | 48 | 4 | data end offset (after the last frame) | must be the end of the segment's data |
//! | 52 | 4 | offset of the last frame | that frame must be intact... |
//! | 56 | 4 | CRC of the last frame | ...and be this one: a stale file is caught without a scan |
//! | 60 | 4 | checkpoint interval | the file is rebuilt if the build's interval differs |
//! | 64 | 4 | stream count | |
//! | 68 | 4 | id count | read alone to decide which files' ids are needed |
//! | 72 | 8 | ids offset (bytes from the start of the file) | |
//! | 80 | 4 | CRC-32 of the ids section | ids are read only for the newest segments |
//! | 84 | 4 | reserved, zero | |
//!
//! Then one entry per stream with events in the segment, in order of first appearance:
//! name length (1 byte), name (UTF-8), first version in the segment (8), that event's back
//! pointer (8), last version in the segment (8), that event's location (8), checkpoint count
//! (4), and the locations of the stream's events in the segment whose version `v` has
//! `(v + 1) % interval == 0` (8 each). On open these spans are chained: each must continue
//! where the stream's previous span ended.
//!
//! Then the ids section: one 28-byte entry per event with an id, in position order: id (16),
//! index of its stream in this file's stream list (4), location of the event (8).
//!
//! # Manifest
//!
//! `MANIFEST` ([`MANIFEST_LEN`] bytes) names the tail segment and records a clean close:
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALMAN` | |
//! | 8 | 4 | format version ([`FORMAT_VERSION`]) | |
//! | 12 | 4 | CRC-32 of bytes 0..12 and 16..48 | |
//! | 16 | 8 | the tail segment's base position | a lost tail segment is noticed |
//! | 24 | 8 | the tail segment's sequence number | |
//! | 32 | 8 | after a clean close, the offset after the tail's last frame; 0 otherwise | data synced at close is never cut, and opening need not look past it |
//! | 40 | 4 | after a clean close, the CRC of the tail's last frame | |
//! | 44 | 4 | reserved, zero | |
//!
//! The segment header and the manifest share the first 32 bytes' layout ([`HEADER_VERSION_AT`],
//! [`HEADER_CRC_AT`], [`HEADER_BASE_AT`], [`HEADER_SEQ_AT`]). The manifest is replaced
//! (temporary file, sync, rename, directory sync) each time a new segment is created (after the
//! segment exists and before anything is written to it), at a clean close, and before the
//! first write after an open that found it recording a clean close or not naming the tail
//! (missing after a crash while the store was created, or naming the segment before an empty
//! tail after a crash in the middle of a roll). Opening compares it with the segment files:
//! a tail segment it names that is not there is a lost file, reported as
//! [`Error::Corrupt`](crate::Error::Corrupt) naming the file, never a shorter log. A segment one
//! past the one it names, and empty, is a crash in the middle of creating it, and is kept.
//!
//! # Checkpoint file
//!
//! 20 bytes: magic `ANNALCKP` (8), the saved position (8), CRC-32 of the first 16 bytes (4).
//! Written as `.{name}.tmp` (a name no checkpoint can have, as checkpoint names never start
//! with a dot), synced, renamed over `{name}`, directory synced: a crash leaves the old value
//! or the new one.
//!
//! # Decoding
//!
//! Decoding takes a byte slice and returns views into it. It checks every length against the
//! bytes actually present before using it, never allocates, and never panics, whatever the
//! input.

use byteorder::{ByteOrder, LittleEndian as LE};

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ANNALSEG";
/// Magic bytes at the start of the manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"ANNALMAN";
/// The format version this build writes and reads. Version 1 (before the durable position in
/// frame headers) is refused with an error that says so.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes in a segment header; the first frame starts here.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Offset of the format version in a segment header (and the manifest); the magic is before.
pub const HEADER_VERSION_AT: usize = 8;
/// Offset of the CRC in a segment header (and the manifest).
pub const HEADER_CRC_AT: usize = 12;
/// Offset of the base position in a segment header (and the manifest).
pub const HEADER_BASE_AT: usize = 16;
/// Offset of the sequence number in a segment header (and the manifest).
pub const HEADER_SEQ_AT: usize = 24;
/// Bytes in the manifest.
pub const MANIFEST_LEN: usize = 48;
/// Offset in the manifest of the end of the tail's data at a clean close (0: not closed).
pub const MANIFEST_CLOSED_END_AT: usize = 32;
/// Offset in the manifest of the CRC of the tail's last frame at a clean close.
pub const MANIFEST_CLOSED_CRC_AT: usize = 40;
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
/// Bytes in an event record header, without the optional id.
pub const RECORD_HEADER_LEN: usize = 52;
/// Bytes of an event id.
pub const ID_LEN: usize = 16;
/// The largest frame (one append) in bytes.
pub const MAX_FRAME_LEN: usize = 1 << 30;
/// Longest stream name and event type, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// The back pointer of a stream's first event.
pub const NO_PREV: u64 = u64::MAX;

const FLAG_HAS_ID: u8 = 1;

/// The location of a record: segment sequence number and byte offset in that segment.
pub fn location(segment_seq: u64, offset: usize) -> u64 {
    (segment_seq << 32) | offset as u64
}

/// The segment sequence number and byte offset of a location.
pub fn split_location(location: u64) -> (u64, usize) {
    (location >> 32, (location & 0xFFFF_FFFF) as usize)
}

/// The decoded header of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// First global position stored in the segment.
    pub base_position: u64,
    /// Ordinal of the segment: 0 for the first one, then 1, 2, ...
    pub seq: u64,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        LE::write_u64(&mut b[HEADER_BASE_AT..], self.base_position);
        LE::write_u64(&mut b[HEADER_SEQ_AT..], self.seq);
        seal_header(&mut b, SEGMENT_MAGIC);
        b
    }

    /// Decodes and checks a header; the error says what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        let b = check_header(b, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, "segment")?;
        Ok(Self::read(b))
    }

    fn read(b: &[u8]) -> Self {
        SegmentHeader {
            base_position: LE::read_u64(&b[HEADER_BASE_AT..]),
            seq: LE::read_u64(&b[HEADER_SEQ_AT..]),
        }
    }
}

/// The decoded manifest: the tail segment and, after a clean close, where its data ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// The tail segment's header.
    pub tail: SegmentHeader,
    /// Set by a clean close: the offset after the tail's last frame and that frame's CRC (0 if
    /// the tail had none). Every byte before it was on stable storage.
    pub closed: Option<(u64, u32)>,
}

impl Manifest {
    /// The manifest's bytes.
    pub fn encode(&self) -> [u8; MANIFEST_LEN] {
        let mut b = [0u8; MANIFEST_LEN];
        LE::write_u64(&mut b[HEADER_BASE_AT..], self.tail.base_position);
        LE::write_u64(&mut b[HEADER_SEQ_AT..], self.tail.seq);
        let (end, crc) = self.closed.unwrap_or((0, 0));
        LE::write_u64(&mut b[MANIFEST_CLOSED_END_AT..], end);
        LE::write_u32(&mut b[MANIFEST_CLOSED_CRC_AT..], crc);
        seal_header(&mut b, MANIFEST_MAGIC);
        b
    }

    /// Decodes and checks a manifest; the error says what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<Self, String> {
        if b.len() != MANIFEST_LEN {
            return Err(format!(
                "manifest of {} bytes, {MANIFEST_LEN} expected",
                b.len()
            ));
        }
        let b = check_header(b, MANIFEST_LEN, MANIFEST_MAGIC, "manifest")?;
        let end = LE::read_u64(&b[MANIFEST_CLOSED_END_AT..]);
        Ok(Manifest {
            tail: SegmentHeader::read(b),
            closed: (end != 0).then(|| (end, LE::read_u32(&b[MANIFEST_CLOSED_CRC_AT..]))),
        })
    }
}

/// Writes the magic and format version of a segment header or manifest, then its CRC over
/// everything but the CRC itself.
fn seal_header(b: &mut [u8], magic: [u8; 8]) {
    b[..HEADER_VERSION_AT].copy_from_slice(&magic);
    LE::write_u32(&mut b[HEADER_VERSION_AT..], FORMAT_VERSION);
    let crc = header_crc(b);
    LE::write_u32(&mut b[HEADER_CRC_AT..], crc);
}

/// Checks the magic, CRC and version of the first `len` bytes of `b`, and returns them.
fn check_header<'a>(
    b: &'a [u8],
    len: usize,
    magic: [u8; 8],
    what: &str,
) -> Result<&'a [u8], String> {
    let Some(b) = b.get(..len) else {
        return Err(format!(
            "{what} header needs {len} bytes, file has {}",
            b.len()
        ));
    };
    if b[..HEADER_VERSION_AT] != magic {
        return Err(format!("not an annals {what} (bad magic)"));
    }
    let stored = LE::read_u32(&b[HEADER_CRC_AT..]);
    let actual = header_crc(b);
    if stored != actual {
        return Err(format!(
            "{what} header checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
        ));
    }
    let version = LE::read_u32(&b[HEADER_VERSION_AT..]);
    if version != FORMAT_VERSION {
        return Err(format!(
            "{what} has format version {version}; this build of annals reads only version \
             {FORMAT_VERSION} (stores of version 1, from before the durable position in frame \
             headers, must be recreated: nothing was released in that format)"
        ));
    }
    Ok(b)
}

fn header_crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..HEADER_CRC_AT]);
    h.update(&b[HEADER_BASE_AT..]);
    h.finalize()
}

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
    /// The frame is complete by its length but not intact.
    Invalid(String),
}

impl FrameFault {
    /// A description for error messages.
    pub fn describe(&self) -> String {
        match self {
            FrameFault::End => "end of data".into(),
            FrameFault::Incomplete { claimed, available } => format!(
                "frame claims {claimed} bytes but only {available} follow (incomplete write)"
            ),
            FrameFault::Invalid(reason) => reason.clone(),
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
        return Err(FrameFault::Invalid(format!(
            "impossible frame length {len}"
        )));
    }
    let bytes = &data[..len];
    let actual = frame_crc(bytes);
    if actual != header.crc {
        return Err(FrameFault::Invalid(format!(
            "frame checksum mismatch (stored {:#010x}, computed {actual:#010x})",
            header.crc
        )));
    }
    if header.count == 0 {
        return Err(FrameFault::Invalid("frame with no events".into()));
    }
    if header.durable > header.first_position {
        return Err(FrameFault::Invalid(format!(
            "frame at position {} claims positions up to {} were durable",
            header.first_position, header.durable
        )));
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
        Records {
            frame: self.bytes,
            cursor: RecordCursor::new(&self.header),
        }
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
    pub fn next<'a>(&mut self, frame: &'a [u8]) -> Option<Result<RecordView<'a>, String>> {
        if self.failed {
            return None;
        }
        let rest = frame.get(self.offset..).unwrap_or_default();
        if self.index == self.count {
            if rest.is_empty() {
                return None;
            }
            self.failed = true;
            return Some(Err(format!(
                "{} unused bytes after the frame's {} records",
                rest.len(),
                self.count
            )));
        }
        let expected = self.first_position.wrapping_add(u64::from(self.index));
        let result = decode_record(rest, false).and_then(|(view, len)| {
            if view.position == expected {
                Ok((view, len))
            } else {
                Err(format!(
                    "record holds position {}, the frame puts it at {expected}",
                    view.position
                ))
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
    /// Offset within the frame of the record that will be read next (or that failed).
    pub fn offset(&self) -> usize {
        self.cursor.offset()
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<RecordView<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next(self.frame)
    }
}

/// An event record decoded in place; also the input of [`encode_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// Global position.
    pub position: u64,
    /// Stream version.
    pub version: u64,
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    /// Location of the previous event of the stream, or [`NO_PREV`].
    pub prev: u64,
    /// The event id, if any.
    pub id: Option<u128>,
    /// Stream name.
    pub stream: &'a str,
    /// Event type.
    pub event_type: &'a str,
    /// Metadata.
    pub metadata: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

/// Encoded length of a record with these field sizes.
pub fn record_len(
    stream_len: usize,
    type_len: usize,
    metadata_len: usize,
    payload_len: usize,
    has_id: bool,
) -> usize {
    RECORD_HEADER_LEN
        + if has_id { ID_LEN } else { 0 }
        + stream_len
        + type_len
        + metadata_len
        + payload_len
}

/// Decodes the record at the start of `b` and returns it with its length. With `verify_crc` the
/// record's own checksum is checked too (frames verified as a whole do not need it).
pub fn decode_record(b: &[u8], verify_crc: bool) -> Result<(RecordView<'_>, usize), String> {
    if b.len() < RECORD_HEADER_LEN {
        return Err(format!(
            "record header needs {RECORD_HEADER_LEN} bytes, {} remain",
            b.len()
        ));
    }
    let len = LE::read_u32(&b[0..4]) as usize;
    if len < RECORD_HEADER_LEN || len > b.len() {
        return Err(format!(
            "record length {len} outside {RECORD_HEADER_LEN}..={}",
            b.len()
        ));
    }
    let rec = &b[..len];
    if verify_crc {
        let stored = LE::read_u32(&rec[4..8]);
        let actual = crc32fast::hash(&rec[8..]);
        if stored != actual {
            return Err(format!(
                "record checksum mismatch (stored {stored:#010x}, computed {actual:#010x})"
            ));
        }
    }
    let flags = rec[40];
    if flags & !FLAG_HAS_ID != 0 || rec[43] != 0 {
        return Err(format!("unknown record flags {flags:#04x}"));
    }
    let has_id = flags & FLAG_HAS_ID != 0;
    let stream_len = usize::from(rec[41]);
    let type_len = usize::from(rec[42]);
    let metadata_len = LE::read_u32(&rec[44..48]) as usize;
    let payload_len = LE::read_u32(&rec[48..52]) as usize;
    if stream_len == 0 || type_len == 0 {
        return Err("empty stream name or event type".into());
    }
    // Field lengths are each below 2^32, so this sum cannot overflow a 64-bit usize; on 32-bit
    // targets checked arithmetic keeps it honest.
    let expected = RECORD_HEADER_LEN
        .checked_add(if has_id { ID_LEN } else { 0 })
        .and_then(|n| n.checked_add(stream_len + type_len))
        .and_then(|n| n.checked_add(metadata_len))
        .and_then(|n| n.checked_add(payload_len));
    if expected != Some(len) {
        return Err(format!(
            "record length {len} does not match its fields' lengths"
        ));
    }
    let mut at = RECORD_HEADER_LEN;
    let id = if has_id {
        at += ID_LEN;
        Some(LE::read_u128(&rec[RECORD_HEADER_LEN..at]))
    } else {
        None
    };
    let stream = std::str::from_utf8(&rec[at..at + stream_len])
        .map_err(|_| "stream name is not UTF-8".to_string())?;
    at += stream_len;
    let event_type = std::str::from_utf8(&rec[at..at + type_len])
        .map_err(|_| "event type is not UTF-8".to_string())?;
    at += type_len;
    let metadata = &rec[at..at + metadata_len];
    at += metadata_len;
    let payload = &rec[at..];
    let view = RecordView {
        position: LE::read_u64(&rec[8..16]),
        version: LE::read_u64(&rec[16..24]),
        timestamp: LE::read_u64(&rec[24..32]),
        prev: LE::read_u64(&rec[32..40]),
        id,
        stream,
        event_type,
        metadata,
        payload,
    };
    Ok((view, len))
}

/// Appends an encoded record to `buf`. The caller has validated the field lengths (names of
/// 1..=255 bytes, metadata and payload below 4 GiB).
pub fn encode_record(buf: &mut Vec<u8>, r: &RecordView<'_>) {
    let start = buf.len();
    let len = record_len(
        r.stream.len(),
        r.event_type.len(),
        r.metadata.len(),
        r.payload.len(),
        r.id.is_some(),
    );
    buf.reserve(len);
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(&[0; 4]); // CRC, filled in below
    buf.extend_from_slice(&r.position.to_le_bytes());
    buf.extend_from_slice(&r.version.to_le_bytes());
    buf.extend_from_slice(&r.timestamp.to_le_bytes());
    buf.extend_from_slice(&r.prev.to_le_bytes());
    let flags = if r.id.is_some() { FLAG_HAS_ID } else { 0 };
    buf.extend_from_slice(&[flags, r.stream.len() as u8, r.event_type.len() as u8, 0]);
    buf.extend_from_slice(&(r.metadata.len() as u32).to_le_bytes());
    buf.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
    if let Some(id) = r.id {
        buf.extend_from_slice(&id.to_le_bytes());
    }
    buf.extend_from_slice(r.stream.as_bytes());
    buf.extend_from_slice(r.event_type.as_bytes());
    buf.extend_from_slice(r.metadata);
    buf.extend_from_slice(r.payload);
    let crc = crc32fast::hash(&buf[start + 8..]);
    LE::write_u32(&mut buf[start + 4..start + 8], crc);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(position: u64, id: Option<u128>) -> RecordView<'static> {
        RecordView {
            position,
            version: 7,
            timestamp: 1_700_000_000_000_000,
            prev: location(3, 4096),
            id,
            stream: "order-42",
            event_type: "OrderPlaced",
            metadata: b"meta",
            payload: b"{\"total\":12}",
        }
    }

    fn frame_of(records: &[RecordView<'_>]) -> Vec<u8> {
        let mut buf = Vec::new();
        let start = begin_frame(&mut buf);
        for r in records {
            encode_record(&mut buf, r);
        }
        finish_frame(
            &mut buf,
            start,
            records[0].position,
            records[0].position.saturating_sub(1),
            records.len() as u32,
            0xABCD,
        );
        buf
    }

    #[test]
    fn segment_header_round_trips_and_detects_damage() {
        let h = SegmentHeader {
            base_position: 1234,
            seq: 5,
        };
        let mut b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        b[20] ^= 1;
        assert!(SegmentHeader::decode(&b).unwrap_err().contains("checksum"));
        assert!(SegmentHeader::decode(&b[..10]).is_err());
    }

    #[test]
    fn frame_round_trips_every_field() {
        let records = [sample(10, Some(u128::MAX - 3)), sample(11, None)];
        let buf = frame_of(&records);
        let frame = read_frame(&buf).unwrap();
        assert_eq!(frame.header.first_position, 10);
        assert_eq!(frame.header.durable, 9);
        assert_eq!(frame.header.prev_crc, 0xABCD);
        assert_eq!(frame.end_position(), 12);
        let decoded: Vec<_> = frame.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(decoded, records);
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let buf = frame_of(&[sample(0, Some(1)), sample(1, None)]);
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                let ok = read_frame(&bad).and_then(|f| {
                    f.records()
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(FrameFault::Invalid)
                });
                assert!(ok.is_err(), "flip of bit {bit} of byte {i} went unnoticed");
            }
        }
    }

    #[test]
    fn truncated_frames_are_incomplete_and_zeros_are_the_end() {
        let buf = frame_of(&[sample(0, None)]);
        for cut in 1..buf.len() {
            assert!(matches!(
                read_frame(&buf[..cut]),
                Err(FrameFault::Incomplete { .. })
            ));
        }
        assert_eq!(read_frame(&[0; 100]).unwrap_err(), FrameFault::End);
        assert_eq!(read_frame(&[0; 5]).unwrap_err(), FrameFault::End);
    }

    #[test]
    fn record_crc_is_checked_when_asked() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &sample(0, None));
        assert!(decode_record(&buf, true).is_ok());
        let last = buf.len() - 1;
        buf[last] ^= 0x40;
        assert!(decode_record(&buf, false).is_ok());
        assert!(decode_record(&buf, true).unwrap_err().contains("checksum"));
    }

    #[test]
    fn record_lengths_that_lie_are_rejected() {
        let mut buf = Vec::new();
        encode_record(&mut buf, &sample(0, None));
        // Claim a payload longer than the record.
        LE::write_u32(&mut buf[48..52], u32::MAX);
        assert!(decode_record(&buf, false).is_err());
    }

    #[test]
    fn locations_split_back() {
        let loc = location(77, 123_456);
        assert_eq!(split_location(loc), (77, 123_456));
    }
}
