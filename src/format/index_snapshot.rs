//! The index snapshot (`INDEX`): the whole stream index and the window of event ids as they
//! stood at one frame boundary `C` of the log, laid out as hash tables that are read through a
//! map, so that opening a store maps one file instead of merging every sealed segment's side
//! file. Opening then indexes only the events from `C` on. Written by a background thread
//! after a segment roll and by the clean close; replaced atomically (`INDEX.tmp`, sync,
//! rename, directory sync). Like the side files it is a cache: a missing, damaged or stale
//! snapshot is ignored (and reported), and opening falls back to the side files.
//!
//! The file is a header page and then sections, each starting on a [`SNAPSHOT_PAGE`]
//! boundary, in this order; their sizes follow from the counts in the header:
//!
//! | section | bytes | what |
//! |---|---|---|
//! | header | one page | the fields below, then zeros |
//! | segments | `segment count` × 24 | for each segment up to the one holding `C`, its last frame as of `C`: the position after it (8), its offset (4), its CRC (4), the offset after it (4), reserved (4). Opening checks each against the log (one frame read per segment), so a snapshot of another log, or of a log since cut, damaged or rewritten, is never used |
//! | stream table | `stream slots` × 32 | open addressing (linear probing) on the stream-name hash: hash (8), last version (8), location of the last event (8), index of the stream's first checkpoint in the checkpoint array (8); a slot whose location is 0 is free (no record lives at offset 0 of segment 0) |
//! | checkpoints | `checkpoint count` × 8 | each stream's checkpoint locations together, in version order; a stream whose last version is `v` has `expected_checkpoints(v)` of them |
//! | collided streams | `collided bytes` | streams whose hash another stream owns in the table: name length (1), name, last version (8), last location (8), first checkpoint index (8) |
//! | id ring | `id count` × 16 | the remembered ids, oldest first: key (8), location (8) |
//! | id table | `id slots` × 16 | open addressing on the id key, at most half full: the key (8, so that a probe needs no other read), index in the ring plus one (8; 0 is free) |
//! | page checksums | `pages` × 4 | CRC-32 of each page from the segments section up to this one |
//!
//! Header (128 bytes used of the first page):
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALSNP` ([`SNAPSHOT_MAGIC`]) | |
//! | 8 | 4 | format version (1) | |
//! | 12 | 4 | CRC-32 of bytes 16..128 | |
//! | 16 | 8 | end position `C`: the snapshot indexes every event below it | opening indexes the log from here |
//! | 24 | 8 | segment count: the segment holding the frame that ends at `C` is the last | |
//! | 32 | 4 | checkpoint interval | a build with another interval ignores the file |
//! | 36 | 4 | reserved, zero | |
//! | 40 | 8 | fingerprint of the stream hash | a build hashing names differently ignores the file |
//! | 48 | 8 | stream count | |
//! | 56 | 8 | stream slots (a power of two, or 0) | |
//! | 64 | 8 | checkpoint count | |
//! | 72 | 8 | collided stream count | |
//! | 80 | 8 | collided bytes | |
//! | 88 | 8 | id count | |
//! | 96 | 8 | id slots (a power of two, or 0) | |
//! | 104 | 8 | id sequence end: the sequence number the next id gets (ring entry `i` has `id sequence end - id count + i`) | the window is counted in ids, across the snapshot and what follows it |
//! | 112 | 4 | CRC-32 of the page checksums | |
//! | 116 | 12 | reserved, zero | |
//!
//! Opening reads the header, the page checksums and the segments section only: the same time
//! for a thousand streams as for a million (and a few microseconds per segment). Each page of
//! the tables is checked against its checksum the first time a lookup touches it; a mismatch
//! is [`Damage::Checksum`](super::Damage) naming the snapshot, never a wrong answer.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::Damage;

/// Magic bytes of an index snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"ANNALSNP";
/// Format version of index snapshots.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Sections start on multiples of this, and each page of them has its own checksum.
pub const SNAPSHOT_PAGE: usize = 4096;
/// Bytes of the header that are used (the rest of its page is zeros).
pub const SNAPSHOT_HEADER_LEN: usize = 128;
/// Offset of the format version.
pub const SNAPSHOT_VERSION_AT: usize = 8;
/// Offset of the CRC of the header (bytes 16..128).
pub const SNAPSHOT_CRC_AT: usize = 12;
/// Offset of the end position `C`.
pub const SNAPSHOT_END_POSITION_AT: usize = 16;
/// Offset of the segment count.
pub const SNAPSHOT_SEGMENTS_AT: usize = 24;
/// Offset of the checkpoint interval.
pub const SNAPSHOT_INTERVAL_AT: usize = 32;
/// Offset of the fingerprint of the stream hash.
pub const SNAPSHOT_HASHER_AT: usize = 40;
/// Offset of the stream count.
pub const SNAPSHOT_STREAMS_AT: usize = 48;
/// Offset of the number of stream slots.
pub const SNAPSHOT_STREAM_SLOTS_AT: usize = 56;
/// Offset of the checkpoint count.
pub const SNAPSHOT_CHECKPOINTS_AT: usize = 64;
/// Offset of the collided stream count.
pub const SNAPSHOT_COLLIDED_AT: usize = 72;
/// Offset of the size of the collided section.
pub const SNAPSHOT_COLLIDED_BYTES_AT: usize = 80;
/// Offset of the id count.
pub const SNAPSHOT_IDS_AT: usize = 88;
/// Offset of the number of id slots.
pub const SNAPSHOT_ID_SLOTS_AT: usize = 96;
/// Offset of the id sequence end.
pub const SNAPSHOT_ID_SEQ_END_AT: usize = 104;
/// Offset of the CRC of the page checksums.
pub const SNAPSHOT_PAGE_CRCS_CRC_AT: usize = 112;
/// Bytes of a segments section entry.
pub const SEGMENT_ENTRY_LEN: usize = 24;
/// Offset in a segment entry of the position after its last frame.
pub const SEGMENT_END_POSITION_AT: usize = 0;
/// Offset in a segment entry of the offset of its last frame.
pub const SEGMENT_LAST_FRAME_AT: usize = 8;
/// Offset in a segment entry of the CRC of its last frame.
pub const SEGMENT_LAST_CRC_AT: usize = 12;
/// Offset in a segment entry of the offset after its last frame.
pub const SEGMENT_DATA_END_AT: usize = 16;
/// Bytes of a stream table slot: hash, last version, last location, first checkpoint.
pub const STREAM_SLOT_LEN: usize = 32;
/// Offset in a stream slot of the hash.
pub const SLOT_HASH_AT: usize = 0;
/// Offset in a stream slot of the last version.
pub const SLOT_VERSION_AT: usize = 8;
/// Offset in a stream slot of the last location (0: the slot is free).
pub const SLOT_LOCATION_AT: usize = 16;
/// Offset in a stream slot of the index of the first checkpoint.
pub const SLOT_CHECKPOINT_AT: usize = 24;
/// Bytes of an id ring entry: key, location.
pub const ID_ENTRY_LEN: usize = 16;
/// Bytes of an id table slot: key, index in the ring plus one.
pub const ID_SLOT_LEN: usize = 16;
/// Offset in an id slot of the key.
pub const ID_SLOT_KEY_AT: usize = 0;
/// Offset in an id slot of the index in the ring plus one (0: the slot is free).
pub const ID_SLOT_INDEX_AT: usize = 8;

const _: () = assert!(SNAPSHOT_MAGIC.len() == SNAPSHOT_VERSION_AT);
const _: () = assert!(SNAPSHOT_CRC_AT + 4 == SNAPSHOT_END_POSITION_AT);
const _: () = assert!(SNAPSHOT_PAGE_CRCS_CRC_AT + 16 == SNAPSHOT_HEADER_LEN);
const _: () = assert!(SEGMENT_DATA_END_AT + 8 == SEGMENT_ENTRY_LEN);
const _: () = assert!(SLOT_CHECKPOINT_AT + 8 == STREAM_SLOT_LEN);
const _: () = assert!(ID_SLOT_INDEX_AT + 8 == ID_SLOT_LEN);
const _: () = assert!(
    SNAPSHOT_PAGE.is_multiple_of(STREAM_SLOT_LEN) && SNAPSHOT_PAGE.is_multiple_of(ID_SLOT_LEN)
);

/// The header of an index snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotHeader {
    /// Every event below this position is indexed.
    pub end_position: u64,
    /// Entries of the segments section.
    pub segments: u64,
    /// Checkpoint interval of the build that wrote it.
    pub interval: u32,
    /// Fingerprint of the stream hash of the build that wrote it.
    pub hasher: u64,
    /// Streams in the snapshot.
    pub streams: u64,
    /// Slots of the stream table.
    pub stream_slots: u64,
    /// Entries of the checkpoint array.
    pub checkpoints: u64,
    /// Streams in the collided section.
    pub collided: u64,
    /// Bytes of the collided section.
    pub collided_bytes: u64,
    /// Ids in the ring.
    pub ids: u64,
    /// Slots of the id table.
    pub id_slots: u64,
    /// Sequence number the next id after the ring gets.
    pub id_seq_end: u64,
    /// CRC of the page checksums.
    pub page_crcs_crc: u32,
}

/// One entry of the segments section: a segment's last frame as of the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SegmentEnd {
    /// Position after the frame.
    pub end_position: u64,
    /// Offset of the frame.
    pub last_frame_offset: u32,
    /// CRC of the frame.
    pub last_frame_crc: u32,
    /// Offset after the frame.
    pub data_end: u32,
}

impl SegmentEnd {
    /// The entry's bytes.
    pub fn encode(&self, out: &mut [u8]) {
        LE::write_u64(&mut out[SEGMENT_END_POSITION_AT..], self.end_position);
        LE::write_u32(&mut out[SEGMENT_LAST_FRAME_AT..], self.last_frame_offset);
        LE::write_u32(&mut out[SEGMENT_LAST_CRC_AT..], self.last_frame_crc);
        LE::write_u32(&mut out[SEGMENT_DATA_END_AT..], self.data_end);
    }

    /// Decodes an entry of [`SEGMENT_ENTRY_LEN`] bytes.
    pub fn decode(b: &[u8]) -> Self {
        SegmentEnd {
            end_position: LE::read_u64(&b[SEGMENT_END_POSITION_AT..]),
            last_frame_offset: LE::read_u32(&b[SEGMENT_LAST_FRAME_AT..]),
            last_frame_crc: LE::read_u32(&b[SEGMENT_LAST_CRC_AT..]),
            data_end: LE::read_u32(&b[SEGMENT_DATA_END_AT..]),
        }
    }
}

/// Where each section of a snapshot lies, from the counts in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotLayout {
    /// Offset of the segments section.
    pub segments: usize,
    /// Offset of the stream table.
    pub streams: usize,
    /// Offset of the checkpoint array.
    pub checkpoints: usize,
    /// Offset of the collided section.
    pub collided: usize,
    /// Offset of the id ring.
    pub id_ring: usize,
    /// Offset of the id table.
    pub id_table: usize,
    /// Offset of the page checksums (the end of the checked pages).
    pub page_crcs: usize,
    /// Number of checked pages.
    pub pages: usize,
    /// Length of the file.
    pub len: usize,
}

fn page_align(n: usize) -> Option<usize> {
    n.checked_add(SNAPSHOT_PAGE - 1)
        .map(|n| n / SNAPSHOT_PAGE * SNAPSHOT_PAGE)
}

impl SnapshotHeader {
    /// The layout its counts give, or `None` if they overflow (a damaged header).
    pub fn layout(&self) -> Option<SnapshotLayout> {
        let size = |count: u64, each: usize| usize::try_from(count).ok()?.checked_mul(each);
        let after = |start: usize, bytes: usize| page_align(start.checked_add(bytes)?);
        let segments = SNAPSHOT_PAGE;
        let streams = after(segments, size(self.segments, SEGMENT_ENTRY_LEN)?)?;
        let checkpoints = after(streams, size(self.stream_slots, STREAM_SLOT_LEN)?)?;
        let collided = after(checkpoints, size(self.checkpoints, 8)?)?;
        let id_ring = after(collided, size(self.collided_bytes, 1)?)?;
        let id_table = after(id_ring, size(self.ids, ID_ENTRY_LEN)?)?;
        let page_crcs = after(id_table, size(self.id_slots, ID_SLOT_LEN)?)?;
        let pages = (page_crcs - segments) / SNAPSHOT_PAGE;
        Some(SnapshotLayout {
            segments,
            streams,
            checkpoints,
            collided,
            id_ring,
            id_table,
            page_crcs,
            pages,
            len: page_crcs.checked_add(pages.checked_mul(4)?)?,
        })
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; SNAPSHOT_HEADER_LEN] {
        let mut h = [0u8; SNAPSHOT_HEADER_LEN];
        h[..SNAPSHOT_VERSION_AT].copy_from_slice(&SNAPSHOT_MAGIC);
        LE::write_u32(&mut h[SNAPSHOT_VERSION_AT..], SNAPSHOT_VERSION);
        LE::write_u32(&mut h[SNAPSHOT_INTERVAL_AT..], self.interval);
        for (at, v) in [
            (SNAPSHOT_END_POSITION_AT, self.end_position),
            (SNAPSHOT_SEGMENTS_AT, self.segments),
            (SNAPSHOT_HASHER_AT, self.hasher),
            (SNAPSHOT_STREAMS_AT, self.streams),
            (SNAPSHOT_STREAM_SLOTS_AT, self.stream_slots),
            (SNAPSHOT_CHECKPOINTS_AT, self.checkpoints),
            (SNAPSHOT_COLLIDED_AT, self.collided),
            (SNAPSHOT_COLLIDED_BYTES_AT, self.collided_bytes),
            (SNAPSHOT_IDS_AT, self.ids),
            (SNAPSHOT_ID_SLOTS_AT, self.id_slots),
            (SNAPSHOT_ID_SEQ_END_AT, self.id_seq_end),
        ] {
            LE::write_u64(&mut h[at..], v);
        }
        LE::write_u32(&mut h[SNAPSHOT_PAGE_CRCS_CRC_AT..], self.page_crcs_crc);
        let crc = crc32fast::hash(&h[SNAPSHOT_END_POSITION_AT..]);
        LE::write_u32(&mut h[SNAPSHOT_CRC_AT..], crc);
        h
    }

    /// Decodes and checks a header (magic, version, checksum, counts that fit a file of
    /// `file_len` bytes).
    pub fn decode(b: &[u8], file_len: u64) -> Result<Self, Damage> {
        const WHAT: &str = "index snapshot header";
        let b = b.get(..SNAPSHOT_HEADER_LEN).ok_or(Damage::Short {
            what: WHAT,
            needed: SNAPSHOT_HEADER_LEN as u64,
            available: b.len() as u64,
        })?;
        if b[..SNAPSHOT_VERSION_AT] != SNAPSHOT_MAGIC {
            return Err(Damage::Magic { what: WHAT });
        }
        let found = LE::read_u32(&b[SNAPSHOT_VERSION_AT..]);
        if found != SNAPSHOT_VERSION {
            return Err(Damage::Version {
                what: WHAT,
                found,
                reads: SNAPSHOT_VERSION,
            });
        }
        let stored = LE::read_u32(&b[SNAPSHOT_CRC_AT..]);
        let computed = crc32fast::hash(&b[SNAPSHOT_END_POSITION_AT..]);
        if stored != computed {
            return Err(Damage::Checksum {
                what: WHAT,
                stored,
                computed,
            });
        }
        let u64_at = |at| LE::read_u64(&b[at..]);
        let header = SnapshotHeader {
            end_position: u64_at(SNAPSHOT_END_POSITION_AT),
            segments: u64_at(SNAPSHOT_SEGMENTS_AT),
            interval: LE::read_u32(&b[SNAPSHOT_INTERVAL_AT..]),
            hasher: u64_at(SNAPSHOT_HASHER_AT),
            streams: u64_at(SNAPSHOT_STREAMS_AT),
            stream_slots: u64_at(SNAPSHOT_STREAM_SLOTS_AT),
            checkpoints: u64_at(SNAPSHOT_CHECKPOINTS_AT),
            collided: u64_at(SNAPSHOT_COLLIDED_AT),
            collided_bytes: u64_at(SNAPSHOT_COLLIDED_BYTES_AT),
            ids: u64_at(SNAPSHOT_IDS_AT),
            id_slots: u64_at(SNAPSHOT_ID_SLOTS_AT),
            id_seq_end: u64_at(SNAPSHOT_ID_SEQ_END_AT),
            page_crcs_crc: LE::read_u32(&b[SNAPSHOT_PAGE_CRCS_CRC_AT..]),
        };
        let slots_ok = |n: u64| n == 0 || n.is_power_of_two();
        if !slots_ok(header.stream_slots) || !slots_ok(header.id_slots) {
            return Err(Damage::Field {
                what: WHAT,
                problem: "a table size is not a power of two",
            });
        }
        let hashed = header.streams.checked_sub(header.collided);
        if hashed.is_none_or(|n| n > header.stream_slots)
            || header.ids > header.id_slots
            || header.id_seq_end < header.ids
            || header.id_seq_end > header.end_position
            || header.segments == 0
        {
            return Err(Damage::Field {
                what: WHAT,
                problem: "counts that do not fit together",
            });
        }
        let expected = header.layout().map_or(u64::MAX, |l| l.len as u64);
        if expected != file_len {
            return Err(Damage::Mismatch {
                what: "index snapshot's size",
                found: file_len,
                expected,
            });
        }
        Ok(header)
    }
}
