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

use byteorder::{ByteOrder, LittleEndian as LE};

use super::damage::Damage;

/// Bytes in an event record header, without the optional id.
pub const RECORD_HEADER_LEN: usize = 52;
/// Offset of a record's length.
pub const RECORD_LEN_AT: usize = 0;
/// Offset of a record's CRC (of the bytes after it).
pub const RECORD_CRC_AT: usize = 4;
/// Offset of a record's global position; the record's CRC covers the record from here.
pub const RECORD_POSITION_AT: usize = 8;
/// Offset of a record's stream version.
pub const RECORD_VERSION_AT: usize = 16;
/// Offset of a record's timestamp.
pub const RECORD_TIMESTAMP_AT: usize = 24;
/// Offset of a record's back pointer.
pub const RECORD_PREV_AT: usize = 32;
/// Offset of a record's flags.
pub const RECORD_FLAGS_AT: usize = 40;
/// Offset of a record's stream name length.
pub const RECORD_STREAM_LEN_AT: usize = 41;
/// Offset of a record's event type length.
pub const RECORD_TYPE_LEN_AT: usize = 42;
/// Offset of a record's reserved byte.
pub const RECORD_RESERVED_AT: usize = 43;
/// Offset of a record's metadata length.
pub const RECORD_METADATA_LEN_AT: usize = 44;
/// Offset of a record's payload length.
pub const RECORD_PAYLOAD_LEN_AT: usize = 48;

const _: () = assert!(RECORD_PAYLOAD_LEN_AT + 4 == RECORD_HEADER_LEN);
const _: () = assert!(RECORD_PREV_AT + 8 == RECORD_FLAGS_AT);
/// Bytes of an event id.
pub const ID_LEN: usize = 16;
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
pub fn decode_record(b: &[u8], verify_crc: bool) -> Result<(RecordView<'_>, usize), Damage> {
    if b.len() < RECORD_HEADER_LEN {
        return Err(Damage::Short {
            what: "record header",
            needed: RECORD_HEADER_LEN as u64,
            available: b.len() as u64,
        });
    }
    let len = LE::read_u32(&b[RECORD_LEN_AT..]) as usize;
    if len < RECORD_HEADER_LEN || len > b.len() {
        return Err(Damage::Length {
            what: "record",
            length: len as u64,
        });
    }
    let rec = &b[..len];
    if verify_crc {
        let stored = LE::read_u32(&rec[RECORD_CRC_AT..]);
        let actual = crc32fast::hash(&rec[RECORD_POSITION_AT..]);
        if stored != actual {
            return Err(Damage::Checksum {
                what: "record",
                stored,
                computed: actual,
            });
        }
    }
    let flags = rec[RECORD_FLAGS_AT];
    if flags & !FLAG_HAS_ID != 0 || rec[RECORD_RESERVED_AT] != 0 {
        return Err(Damage::Field {
            what: "record flags",
            problem: "unknown bits set",
        });
    }
    let has_id = flags & FLAG_HAS_ID != 0;
    let stream_len = usize::from(rec[RECORD_STREAM_LEN_AT]);
    let type_len = usize::from(rec[RECORD_TYPE_LEN_AT]);
    let metadata_len = LE::read_u32(&rec[RECORD_METADATA_LEN_AT..]) as usize;
    let payload_len = LE::read_u32(&rec[RECORD_PAYLOAD_LEN_AT..]) as usize;
    if stream_len == 0 || type_len == 0 {
        return Err(Damage::Field {
            what: "record",
            problem: "empty stream name or event type",
        });
    }
    // Field lengths are each below 2^32, so this sum cannot overflow a 64-bit usize; on 32-bit
    // targets checked arithmetic keeps it honest.
    let expected = RECORD_HEADER_LEN
        .checked_add(if has_id { ID_LEN } else { 0 })
        .and_then(|n| n.checked_add(stream_len + type_len))
        .and_then(|n| n.checked_add(metadata_len))
        .and_then(|n| n.checked_add(payload_len));
    if expected != Some(len) {
        return Err(Damage::Field {
            what: "record",
            problem: "its length does not match its fields' lengths",
        });
    }
    let mut at = RECORD_HEADER_LEN;
    let id = if has_id {
        at += ID_LEN;
        Some(LE::read_u128(&rec[RECORD_HEADER_LEN..at]))
    } else {
        None
    };
    // The name and the type lie side by side: one UTF-8 check for both (cheaper than two on
    // such short strings), then the split must fall on a character boundary, which makes
    // each half valid UTF-8 on its own.
    let names =
        std::str::from_utf8(&rec[at..at + stream_len + type_len]).map_err(|_| Damage::Field {
            what: "stream name or event type",
            problem: "not UTF-8",
        })?;
    let (Some(stream), Some(event_type)) = (names.get(..stream_len), names.get(stream_len..))
    else {
        return Err(Damage::Field {
            what: "stream name",
            problem: "not UTF-8",
        });
    };
    at += stream_len + type_len;
    let metadata = &rec[at..at + metadata_len];
    at += metadata_len;
    let payload = &rec[at..];
    let view = RecordView {
        position: LE::read_u64(&rec[RECORD_POSITION_AT..]),
        version: LE::read_u64(&rec[RECORD_VERSION_AT..]),
        timestamp: LE::read_u64(&rec[RECORD_TIMESTAMP_AT..]),
        prev: LE::read_u64(&rec[RECORD_PREV_AT..]),
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
    // Field by field, in the order of the table above (checked by the round-trip tests).
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
    let crc = crc32fast::hash(&buf[start + RECORD_POSITION_AT..]);
    LE::write_u32(&mut buf[start + RECORD_CRC_AT..], crc);
}
