//! The type and category index of a sealed segment, `{base:020}.tix`: for each event type and
//! each category (the part of a stream name before its first `-`, EventStoreDB's convention)
//! with events in the segment, the original offsets of those events' records, in position
//! order. Written when a segment is sealed (beside its side file) and when compaction or
//! erasure rewrites it; read a directory and one list at a time, so that a read by type or
//! category costs what it returns. A cache like the side file: its header names the segment's
//! last frame, and a missing, stale or damaged file is rebuilt from the segment, in memory.
//!
//! Header ([`POSTINGS_HEADER_LEN`] bytes):
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALTIX` ([`POSTINGS_MAGIC`]) | |
//! | 8 | 4 | format version ([`POSTINGS_VERSION`]) | |
//! | 12 | 4 | CRC-32 of bytes 16..end of the directory ([`POSTINGS_CRC_AT`]) | header and directory checked together |
//! | 16 | 8 | segment base position ([`POSTINGS_BASE_AT`]) | must match the segment |
//! | 24 | 8 | segment sequence number ([`POSTINGS_SEQ_AT`]) | must match the segment |
//! | 32 | 24 | the segment's end as a [`SegmentEnd`] ([`POSTINGS_END_AT`]) | a stale file is caught without a scan |
//! | 56 | 4 | number of keys ([`POSTINGS_KEYS_AT`]) | |
//! | 60 | 4 | bytes of the directory ([`POSTINGS_DIRECTORY_LEN_AT`]) | read in one go |
//!
//! The directory follows: per key, its kind (1 byte: [`KEY_TYPE`] or [`KEY_CATEGORY`]), name
//! length (1), name (UTF-8), event count (4), offset of its list in the file (8), CRC-32 of its
//! list (4). Then the lists: each event's record offset in the segment as first written (4
//! bytes each; with the segment's number, the event's location).

use byteorder::{ByteOrder, LittleEndian as LE};

use super::damage::Damage;
use super::index_snapshot::{SegmentEnd, SEGMENT_ENTRY_LEN};

/// Magic bytes at the start of a type and category index.
pub const POSTINGS_MAGIC: [u8; 8] = *b"ANNALTIX";
/// Format version of type and category indexes.
pub const POSTINGS_VERSION: u32 = 1;
/// Bytes in the header.
pub const POSTINGS_HEADER_LEN: usize = 64;
/// Offset of the format version.
pub const POSTINGS_VERSION_AT: usize = 8;
/// Offset of the CRC of the header and directory.
pub const POSTINGS_CRC_AT: usize = 12;
/// Offset of the segment's base position.
pub const POSTINGS_BASE_AT: usize = 16;
/// Offset of the segment's sequence number.
pub const POSTINGS_SEQ_AT: usize = 24;
/// Offset of the segment's end.
pub const POSTINGS_END_AT: usize = 32;
/// Offset of the number of keys.
pub const POSTINGS_KEYS_AT: usize = 56;
/// Offset of the directory's length.
pub const POSTINGS_DIRECTORY_LEN_AT: usize = 60;
/// Kind byte of an event type key.
pub const KEY_TYPE: u8 = 0;
/// Kind byte of a category key.
pub const KEY_CATEGORY: u8 = 1;

const _: () = assert!(POSTINGS_END_AT + SEGMENT_ENTRY_LEN == POSTINGS_KEYS_AT);
const _: () = assert!(POSTINGS_DIRECTORY_LEN_AT + 4 == POSTINGS_HEADER_LEN);

/// The decoded header of a type and category index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostingsHeader {
    /// The segment's base position.
    pub base_position: u64,
    /// The segment's sequence number.
    pub seq: u64,
    /// The segment's end when the file was written.
    pub end: SegmentEnd,
    /// Number of keys in the directory.
    pub keys: u32,
    /// Bytes of the directory.
    pub directory_len: u32,
}

/// One directory entry: a key and where its list is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// [`KEY_TYPE`] or [`KEY_CATEGORY`].
    pub kind: u8,
    /// The type or category.
    pub name: String,
    /// Number of events.
    pub count: u32,
    /// Offset of the list in the file.
    pub list_offset: u64,
    /// CRC-32 of the list.
    pub list_crc: u32,
}

/// Encodes a whole file: `lists` in order, each with its key.
pub fn encode_postings(header: &PostingsHeader, lists: &[(u8, &str, &[u32])]) -> Vec<u8> {
    let mut directory = Vec::new();
    let directory_len: usize = lists
        .iter()
        .map(|(_, name, _)| 1 + 1 + name.len() + 16)
        .sum();
    let mut list_offset = (POSTINGS_HEADER_LEN + directory_len) as u64;
    let mut body = Vec::new();
    for (kind, name, list) in lists {
        let start = body.len();
        for offset in *list {
            body.extend_from_slice(&offset.to_le_bytes());
        }
        directory.push(*kind);
        directory.push(name.len() as u8);
        directory.extend_from_slice(name.as_bytes());
        directory.extend_from_slice(&(list.len() as u32).to_le_bytes());
        directory.extend_from_slice(&list_offset.to_le_bytes());
        directory.extend_from_slice(&crc32fast::hash(&body[start..]).to_le_bytes());
        list_offset += (body.len() - start) as u64;
    }
    let mut out = vec![0u8; POSTINGS_HEADER_LEN];
    out[..POSTINGS_VERSION_AT].copy_from_slice(&POSTINGS_MAGIC);
    LE::write_u32(&mut out[POSTINGS_VERSION_AT..], POSTINGS_VERSION);
    LE::write_u64(&mut out[POSTINGS_BASE_AT..], header.base_position);
    LE::write_u64(&mut out[POSTINGS_SEQ_AT..], header.seq);
    header.end.encode(&mut out[POSTINGS_END_AT..]);
    LE::write_u32(&mut out[POSTINGS_KEYS_AT..], lists.len() as u32);
    LE::write_u32(
        &mut out[POSTINGS_DIRECTORY_LEN_AT..],
        directory.len() as u32,
    );
    out.extend_from_slice(&directory);
    let crc = crc32fast::hash(&out[POSTINGS_BASE_AT..]);
    LE::write_u32(&mut out[POSTINGS_CRC_AT..], crc);
    out.extend_from_slice(&body);
    out
}

/// Decodes a header (magic and version checked; the CRC needs the directory too).
pub fn decode_postings_header(b: &[u8]) -> Result<PostingsHeader, Damage> {
    let Some(b) = b.get(..POSTINGS_HEADER_LEN) else {
        return Err(Damage::Short {
            what: "type and category index header",
            needed: POSTINGS_HEADER_LEN as u64,
            available: b.len() as u64,
        });
    };
    if b[..POSTINGS_VERSION_AT] != POSTINGS_MAGIC {
        return Err(Damage::Magic {
            what: "type and category index",
        });
    }
    let found = LE::read_u32(&b[POSTINGS_VERSION_AT..]);
    if found != POSTINGS_VERSION {
        return Err(Damage::Version {
            what: "type and category index",
            found,
            reads: POSTINGS_VERSION,
        });
    }
    Ok(PostingsHeader {
        base_position: LE::read_u64(&b[POSTINGS_BASE_AT..]),
        seq: LE::read_u64(&b[POSTINGS_SEQ_AT..]),
        end: SegmentEnd::decode(&b[POSTINGS_END_AT..]),
        keys: LE::read_u32(&b[POSTINGS_KEYS_AT..]),
        directory_len: LE::read_u32(&b[POSTINGS_DIRECTORY_LEN_AT..]),
    })
}

/// Checks the CRC of `head` (the header and the directory) and decodes the directory.
pub fn decode_postings_directory(head: &[u8]) -> Result<Vec<DirectoryEntry>, Damage> {
    let header = decode_postings_header(head)?;
    let stored = LE::read_u32(&head[POSTINGS_CRC_AT..]);
    let computed = crc32fast::hash(&head[POSTINGS_BASE_AT..]);
    if stored != computed {
        return Err(Damage::Checksum {
            what: "type and category index directory",
            stored,
            computed,
        });
    }
    let mut entries = Vec::new();
    let mut at = POSTINGS_HEADER_LEN;
    let short = Damage::Field {
        what: "type and category index directory",
        problem: "an entry runs past its end",
    };
    for _ in 0..header.keys {
        let kind = *head.get(at).ok_or(short.clone())?;
        let len = usize::from(*head.get(at + 1).ok_or(short.clone())?);
        let name = head.get(at + 2..at + 2 + len).ok_or(short.clone())?;
        let name = std::str::from_utf8(name).map_err(|_| Damage::Field {
            what: "type and category index directory",
            problem: "a name is not UTF-8",
        })?;
        let rest = head
            .get(at + 2 + len..at + 2 + len + 16)
            .ok_or(short.clone())?;
        entries.push(DirectoryEntry {
            kind,
            name: name.to_string(),
            count: LE::read_u32(&rest[0..4]),
            list_offset: LE::read_u64(&rest[4..12]),
            list_crc: LE::read_u32(&rest[12..16]),
        });
        at += 2 + len + 16;
    }
    if at != head.len() {
        return Err(Damage::Trailing {
            what: "type and category index directory",
            bytes: (head.len().saturating_sub(at)) as u64,
        });
    }
    Ok(entries)
}

/// Checks a list's CRC and decodes its offsets.
pub fn decode_postings_list(bytes: &[u8], crc: u32) -> Result<Vec<u32>, Damage> {
    let computed = crc32fast::hash(bytes);
    if computed != crc {
        return Err(Damage::Checksum {
            what: "type and category index list",
            stored: crc,
            computed,
        });
    }
    Ok(bytes.chunks_exact(4).map(LE::read_u32).collect())
}
