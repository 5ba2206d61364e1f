//! Written for each segment when it is sealed (by a background thread) so that opening a store
//! reads these files instead of scanning the segments. It is a cache: both sections are
//! checksummed, its header must match the segment as it is, and a missing, stale or damaged
//! file is rebuilt from the segment on open (and reported). Header, 88 bytes:
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALIDX` ([`INDEX_MAGIC`]) | |
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

/// Magic bytes at the start of an index side file.
pub const INDEX_MAGIC: [u8; 8] = *b"ANNALIDX";
/// Format version of index side files.
pub const INDEX_VERSION: u32 = 2;
/// Bytes in an index side file's header.
pub const INDEX_HEADER_LEN: usize = 88;
/// Offset of the format version.
pub const INDEX_VERSION_AT: usize = 8;
/// Offset of the CRC of the header and streams (bytes 16 up to the ids).
pub const INDEX_CRC_AT: usize = 12;
/// Offset of the segment's base position.
pub const INDEX_BASE_AT: usize = 16;
/// Offset of the segment's sequence number.
pub const INDEX_SEQ_AT: usize = 24;
/// Offset of the position after the segment's last event.
pub const INDEX_END_POSITION_AT: usize = 32;
/// Offset of the offset after the segment's last frame.
pub const INDEX_DATA_END_AT: usize = 48;
/// Offset of the offset of the segment's last frame.
pub const INDEX_LAST_FRAME_AT: usize = 52;
/// Offset of the CRC of the segment's last frame.
pub const INDEX_LAST_CRC_AT: usize = 56;
/// Offset of the checkpoint interval.
pub const INDEX_INTERVAL_AT: usize = 60;
/// Offset of the stream count.
pub const INDEX_STREAM_COUNT_AT: usize = 64;
/// Offset of the id count.
pub const INDEX_ID_COUNT_AT: usize = 68;
/// Offset of the ids section's offset in the file.
pub const INDEX_IDS_OFFSET_AT: usize = 72;
/// Offset of the CRC of the ids section.
pub const INDEX_IDS_CRC_AT: usize = 80;
/// Bytes of one entry of the ids section: id (16), stream index (4), location (8).
pub const INDEX_ID_ENTRY_LEN: usize = 28;
/// Smallest encoded stream entry: a one-byte name and no checkpoints.
pub const INDEX_MIN_STREAM_ENTRY_LEN: usize = 1 + 1 + 8 * 4 + 4;

const _: () = assert!(INDEX_IDS_CRC_AT + 4 + 4 == INDEX_HEADER_LEN);
const _: () = assert!(INDEX_BASE_AT == INDEX_CRC_AT + 4);
