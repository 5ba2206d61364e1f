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

use byteorder::{ByteOrder, LittleEndian as LE};

use super::damage::Damage;
use super::rewritten::REWRITTEN_VERSION;

/// Magic bytes at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"ANNALSEG";
/// Magic bytes at the start of the manifest.
pub const MANIFEST_MAGIC: [u8; 8] = *b"ANNALMAN";
/// The format version this build writes and reads. Version 1 (before the durable position in
/// frame headers) is refused with an error that says so. A segment that compaction or erasure
/// rewrote has version [`REWRITTEN_VERSION`] (see [`super::rewritten`]).
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

const _: () = assert!(HEADER_SEQ_AT + 8 == SEGMENT_HEADER_LEN);
const _: () = assert!(SEGMENT_HEADER_LEN == MANIFEST_CLOSED_END_AT);
const _: () = assert!(MANIFEST_CLOSED_CRC_AT + 4 + 4 == MANIFEST_LEN);

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
        self.encode_version(FORMAT_VERSION)
    }

    /// The header's bytes for a rewritten segment ([`REWRITTEN_VERSION`]).
    pub fn encode_rewritten(&self) -> [u8; SEGMENT_HEADER_LEN] {
        self.encode_version(REWRITTEN_VERSION)
    }

    fn encode_version(&self, version: u32) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        LE::write_u64(&mut b[HEADER_BASE_AT..], self.base_position);
        LE::write_u64(&mut b[HEADER_SEQ_AT..], self.seq);
        seal_header(&mut b, SEGMENT_MAGIC, version);
        b
    }

    /// Decodes and checks a header; the error says what is wrong with it. Also says whether
    /// the segment was rewritten ([`REWRITTEN_VERSION`]: it ends with a run table).
    pub fn decode(b: &[u8]) -> Result<(Self, bool), Damage> {
        let (b, version) = check_header(b, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, "segment header")?;
        Ok((Self::read(b), version == REWRITTEN_VERSION))
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
        seal_header(&mut b, MANIFEST_MAGIC, FORMAT_VERSION);
        b
    }

    /// Decodes and checks a manifest; the error says what is wrong with it.
    pub fn decode(b: &[u8]) -> Result<Self, Damage> {
        if b.len() != MANIFEST_LEN {
            return Err(Damage::Mismatch {
                what: "manifest length",
                found: b.len() as u64,
                expected: MANIFEST_LEN as u64,
            });
        }
        let (b, version) = check_header(b, MANIFEST_LEN, MANIFEST_MAGIC, "manifest")?;
        if version != FORMAT_VERSION {
            return Err(Damage::Version {
                what: "manifest",
                found: version,
                reads: FORMAT_VERSION,
            });
        }
        let end = LE::read_u64(&b[MANIFEST_CLOSED_END_AT..]);
        Ok(Manifest {
            tail: SegmentHeader::read(b),
            closed: (end != 0).then(|| (end, LE::read_u32(&b[MANIFEST_CLOSED_CRC_AT..]))),
        })
    }
}

/// Writes the magic and format version of a segment header or manifest, then its CRC over
/// everything but the CRC itself.
fn seal_header(b: &mut [u8], magic: [u8; 8], version: u32) {
    b[..HEADER_VERSION_AT].copy_from_slice(&magic);
    LE::write_u32(&mut b[HEADER_VERSION_AT..], version);
    let crc = header_crc(b);
    LE::write_u32(&mut b[HEADER_CRC_AT..], crc);
}

/// Checks the magic, CRC and version (one this build reads) of the first `len` bytes of `b`,
/// and returns them and the version.
fn check_header<'a>(
    b: &'a [u8],
    len: usize,
    magic: [u8; 8],
    what: &'static str,
) -> Result<(&'a [u8], u32), Damage> {
    let Some(b) = b.get(..len) else {
        return Err(Damage::Short {
            what,
            needed: len as u64,
            available: b.len() as u64,
        });
    };
    if b[..HEADER_VERSION_AT] != magic {
        return Err(Damage::Magic { what });
    }
    let stored = LE::read_u32(&b[HEADER_CRC_AT..]);
    let computed = header_crc(b);
    if stored != computed {
        return Err(Damage::Checksum {
            what,
            stored,
            computed,
        });
    }
    let found = LE::read_u32(&b[HEADER_VERSION_AT..]);
    if found != FORMAT_VERSION && found != REWRITTEN_VERSION {
        return Err(Damage::Version {
            what,
            found,
            reads: FORMAT_VERSION,
        });
    }
    Ok((b, found))
}

fn header_crc(b: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..HEADER_CRC_AT]);
    h.update(&b[HEADER_BASE_AT..]);
    h.finalize()
}
