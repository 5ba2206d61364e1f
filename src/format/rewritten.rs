//! A *rewritten* segment: a sealed segment that compaction or erasure wrote anew without some
//! of its events. Its header carries format version [`REWRITTEN_VERSION`]; its frames follow
//! as in any segment, except that positions may jump from one frame to the next (the removed
//! events are holes) and one original append may be split into several frames (each frame is
//! a run of events that were next to each other). Every record keeps its bytes, its position
//! and its back pointer.
//!
//! Every index names an event by its *original* location (segment, offset as first written),
//! so that nothing pointing into the segment has to change when it is rewritten. The file
//! therefore ends with a table from original offsets to new ones, one entry per run of kept
//! records, sorted by both (records keep their order), and a trailer of [`TRAILER_LEN`] bytes
//! at the very end of the file:
//!
//! ```text
//! header (32) | frames ... | zeros | run table (RUN_LEN × runs) | trailer (TRAILER_LEN)
//! ```
//!
//! Run table entry ([`RUN_LEN`] bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | original offset of the run's first record ([`RUN_ORIGINAL_AT`]) |
//! | 4 | 4 | its offset in this file ([`RUN_NEW_AT`]) |
//! | 8 | 4 | bytes of records in the run ([`RUN_LEN_AT`]) |
//!
//! Trailer:
//!
//! | offset | size | field | why |
//! |---|---|---|---|
//! | 0 | 8 | magic `ANNALREW` | |
//! | 8 | 4 | number of runs ([`TRAILER_RUNS_AT`]) | where the table starts |
//! | 12 | 4 | CRC-32 of the trailer's other bytes ([`TRAILER_CRC_AT`]) | a damaged trailer is detected |
//! | 16 | 4 | CRC-32 of the run table ([`TRAILER_TABLE_CRC_AT`]) | checked at the first lookup, so opening reads only the trailer |
//! | 20 | 4 | offset after the last frame ([`TRAILER_DATA_END_AT`]) | readers stop there |
//! | 24 | 8 | events removed from the original segment so far ([`TRAILER_REMOVED_AT`]) | reported by `annals stat` |
//! | 32 | 24 | the original segment's end ([`SegmentEnd`], [`TRAILER_ORIGINAL_END_AT`]) | its position after the last event chains the next segment; index snapshots written before the rewrite name it |
//!
//! A segment rewritten again keeps its original end and composes the table (entries still
//! map original offsets). A location whose offset falls in no run names a removed event.

use byteorder::{ByteOrder, LittleEndian as LE};

use super::damage::Damage;
use super::index_snapshot::{SegmentEnd, SEGMENT_ENTRY_LEN};

/// Segment format version of a rewritten segment (version 2 with holes and a run table).
pub const REWRITTEN_VERSION: u32 = 3;
/// Magic bytes at the start of the trailer.
pub const TRAILER_MAGIC: [u8; 8] = *b"ANNALREW";
/// Bytes in one run table entry.
pub const RUN_LEN: usize = 12;
/// Offset in a run entry of the run's original offset.
pub const RUN_ORIGINAL_AT: usize = 0;
/// Offset in a run entry of the run's offset in the rewritten file.
pub const RUN_NEW_AT: usize = 4;
/// Offset in a run entry of the run's length in bytes.
pub const RUN_LEN_AT: usize = 8;
/// Bytes in the trailer.
pub const TRAILER_LEN: usize = 56;
/// Offset in the trailer of the number of runs.
pub const TRAILER_RUNS_AT: usize = 8;
/// Offset in the trailer of its CRC.
pub const TRAILER_CRC_AT: usize = 12;
/// Offset in the trailer of the run table's CRC.
pub const TRAILER_TABLE_CRC_AT: usize = 16;
/// Offset in the trailer of the end of the frames.
pub const TRAILER_DATA_END_AT: usize = 20;
/// Offset in the trailer of the number of events removed.
pub const TRAILER_REMOVED_AT: usize = 24;
/// Offset in the trailer of the original segment's end.
pub const TRAILER_ORIGINAL_END_AT: usize = 32;

const _: () = assert!(RUN_LEN_AT + 4 == RUN_LEN);
const _: () = assert!(TRAILER_ORIGINAL_END_AT + SEGMENT_ENTRY_LEN == TRAILER_LEN);

/// The decoded trailer of a rewritten segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Number of runs in the table.
    pub runs: u32,
    /// CRC of the run table.
    pub table_crc: u32,
    /// Offset after the last frame.
    pub data_end: u32,
    /// Events removed from the original segment so far.
    pub removed: u64,
    /// The original segment's end.
    pub original_end: SegmentEnd,
}

/// One run of kept records: where it was, where it is, how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// Original offset of the run's first record.
    pub original: u32,
    /// Its offset in the rewritten file.
    pub new: u32,
    /// Bytes of records in the run.
    pub len: u32,
}

impl Trailer {
    /// The table (from `runs`) and trailer bytes that end a rewritten file.
    pub fn encode(&self, runs: &[Run]) -> Vec<u8> {
        let mut out = vec![0u8; runs.len() * RUN_LEN + TRAILER_LEN];
        for (entry, run) in out.chunks_exact_mut(RUN_LEN).zip(runs) {
            LE::write_u32(&mut entry[RUN_ORIGINAL_AT..], run.original);
            LE::write_u32(&mut entry[RUN_NEW_AT..], run.new);
            LE::write_u32(&mut entry[RUN_LEN_AT..], run.len);
        }
        let (table, t) = out.split_at_mut(runs.len() * RUN_LEN);
        t[..TRAILER_RUNS_AT].copy_from_slice(&TRAILER_MAGIC);
        LE::write_u32(&mut t[TRAILER_RUNS_AT..], runs.len() as u32);
        LE::write_u32(&mut t[TRAILER_TABLE_CRC_AT..], crc32fast::hash(table));
        LE::write_u32(&mut t[TRAILER_DATA_END_AT..], self.data_end);
        LE::write_u64(&mut t[TRAILER_REMOVED_AT..], self.removed);
        self.original_end.encode(&mut t[TRAILER_ORIGINAL_END_AT..]);
        let crc = trailer_crc(t);
        LE::write_u32(&mut t[TRAILER_CRC_AT..], crc);
        out
    }

    /// Decodes and checks the trailer at the end of `file` (a whole rewritten segment file),
    /// and that the table and the frames fit before it.
    pub fn decode(file: &[u8]) -> Result<Self, Damage> {
        let Some(start) = file.len().checked_sub(TRAILER_LEN) else {
            return Err(Damage::Short {
                what: "rewritten segment's trailer",
                needed: TRAILER_LEN as u64,
                available: file.len() as u64,
            });
        };
        let t = &file[start..];
        if t[..TRAILER_RUNS_AT] != TRAILER_MAGIC {
            return Err(Damage::Magic {
                what: "rewritten segment's trailer",
            });
        }
        let stored = LE::read_u32(&t[TRAILER_CRC_AT..]);
        let computed = trailer_crc(t);
        if stored != computed {
            return Err(Damage::Checksum {
                what: "rewritten segment's trailer",
                stored,
                computed,
            });
        }
        let trailer = Trailer {
            runs: LE::read_u32(&t[TRAILER_RUNS_AT..]),
            table_crc: LE::read_u32(&t[TRAILER_TABLE_CRC_AT..]),
            data_end: LE::read_u32(&t[TRAILER_DATA_END_AT..]),
            removed: LE::read_u64(&t[TRAILER_REMOVED_AT..]),
            original_end: SegmentEnd::decode(&t[TRAILER_ORIGINAL_END_AT..]),
        };
        let table = (trailer.runs as usize).saturating_mul(RUN_LEN);
        if table.saturating_add(trailer.data_end as usize) > start {
            return Err(Damage::Length {
                what: "rewritten segment's run table",
                length: table as u64,
            });
        }
        Ok(trailer)
    }

    /// The run table in `file` (the whole rewritten file, whose trailer [`Trailer::decode`]
    /// checked), unchecked: see [`Trailer::table`].
    pub fn table_unchecked<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        let end = file.len().saturating_sub(TRAILER_LEN);
        let start = end.saturating_sub(self.runs as usize * RUN_LEN);
        file.get(start..end).unwrap_or_default()
    }

    /// The run table in `file` (the whole rewritten file), its CRC checked.
    pub fn table<'a>(&self, file: &'a [u8]) -> Result<&'a [u8], Damage> {
        let table = self.table_unchecked(file);
        let computed = crc32fast::hash(table);
        if computed != self.table_crc {
            return Err(Damage::Checksum {
                what: "rewritten segment's run table",
                stored: self.table_crc,
                computed,
            });
        }
        Ok(table)
    }
}

fn trailer_crc(t: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&t[..TRAILER_CRC_AT]);
    h.update(&t[TRAILER_TABLE_CRC_AT..]);
    h.finalize()
}

/// Run `i` of a checked table.
pub fn run(table: &[u8], i: usize) -> Run {
    let e = &table[i * RUN_LEN..(i + 1) * RUN_LEN];
    Run {
        original: LE::read_u32(&e[RUN_ORIGINAL_AT..]),
        new: LE::read_u32(&e[RUN_NEW_AT..]),
        len: LE::read_u32(&e[RUN_LEN_AT..]),
    }
}

/// The run holding `offset`, counted in original offsets (`original`) or in the rewritten
/// file's, if any.
pub fn run_holding(table: &[u8], offset: u32, original: bool) -> Option<Run> {
    let start = |r: Run| if original { r.original } else { r.new };
    let n = table.len() / RUN_LEN;
    // The last run starting at or before `offset`.
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if start(run(table, mid)) <= offset {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let r = run(table, lo.checked_sub(1)?);
    (offset - start(r) < r.len).then_some(r)
}
