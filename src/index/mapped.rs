//! [`MappedIndex`]: an index snapshot read through its map. Opening it reads the header, the
//! page checksums, the segments section and the (rare) collided streams; every other page is
//! checked against its checksum the first time a lookup touches it, and remembered as checked
//! in a bitmap of one bit per page.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use byteorder::{ByteOrder, LittleEndian as LE};
use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::format::{
    Damage, SegmentEnd, SnapshotHeader, SnapshotLayout, ID_ENTRY_LEN, ID_SLOT_INDEX_AT,
    ID_SLOT_KEY_AT, ID_SLOT_LEN, SEGMENT_ENTRY_LEN, SLOT_CHECKPOINT_AT, SLOT_HASH_AT,
    SLOT_LOCATION_AT, SLOT_VERSION_AT, SNAPSHOT_PAGE, STREAM_SLOT_LEN,
};
use crate::fs::dir::SNAPSHOT_FILE;
use crate::fs::snapshot;

/// What the snapshot holds of one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseEntry {
    /// Version of the stream's last event.
    pub last_version: u64,
    /// Location of that event.
    pub last_location: u64,
    /// Index of the stream's first checkpoint in the checkpoint array.
    pub first_checkpoint: u64,
}

/// An index snapshot, mapped.
#[derive(Debug)]
pub struct MappedIndex {
    path: PathBuf,
    map: Mmap,
    header: SnapshotHeader,
    layout: SnapshotLayout,
    /// One bit per page: set once the page matched its checksum.
    checked: Box<[AtomicU64]>,
    segments: Vec<SegmentEnd>,
    collided: HashMap<Box<str>, BaseEntry>,
}

impl MappedIndex {
    /// Maps the snapshot of `dir`. `Ok(None)`: there is none. `Err(reason)`: it cannot be
    /// used (damaged, or written by a build with another stream hash `hasher`).
    pub fn open(
        dir: &Path,
        hasher: u64,
        interval: u32,
    ) -> std::result::Result<Option<Self>, String> {
        let Some(map) = snapshot::map(dir).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let header = SnapshotHeader::decode(&map, map.len() as u64).map_err(|d| d.to_string())?;
        if header.hasher != hasher || header.interval != interval {
            return Err(
                "written by a build that hashes stream names or places checkpoints \
                        differently"
                    .into(),
            );
        }
        let layout = header
            .layout()
            .ok_or_else(|| "its counts overflow".to_string())?;
        let crcs = &map[layout.page_crcs..];
        let computed = crc32fast::hash(crcs);
        if computed != header.page_crcs_crc {
            return Err(Damage::Checksum {
                what: "index snapshot page checksums",
                stored: header.page_crcs_crc,
                computed,
            }
            .to_string());
        }
        let mut index = MappedIndex {
            path: dir.join(SNAPSHOT_FILE),
            checked: (0..layout.pages.div_ceil(64))
                .map(|_| AtomicU64::new(0))
                .collect(),
            map,
            header,
            layout,
            segments: Vec::new(),
            collided: HashMap::new(),
        };
        let at = index.layout.segments;
        let len = header.segments as usize * SEGMENT_ENTRY_LEN;
        index.segments = index
            .bytes(at, len)
            .map_err(|e| e.to_string())?
            .chunks_exact(SEGMENT_ENTRY_LEN)
            .map(SegmentEnd::decode)
            .collect();
        index.collided = index.read_collided().map_err(|e| e.to_string())?;
        Ok(Some(index))
    }

    /// The snapshot's header.
    pub fn header(&self) -> &SnapshotHeader {
        &self.header
    }

    /// The last frame of each segment up to the one holding the end position, as of the
    /// snapshot.
    pub fn segments(&self) -> &[SegmentEnd] {
        &self.segments
    }

    /// Bytes of the mapped file.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The whole file as mapped.
    pub fn file_bytes(&self) -> &[u8] {
        &self.map
    }

    /// Checks every page against its checksum: an [`Error::Corrupt`] naming each damaged one.
    pub fn damaged_pages(&self) -> Vec<Error> {
        let start = self.layout.segments;
        (start..self.layout.page_crcs)
            .step_by(SNAPSHOT_PAGE)
            .filter_map(|at| self.bytes(at, 1).err())
            .collect()
    }

    /// `len` bytes at `at`, every page they touch checked against its checksum.
    fn bytes(&self, at: usize, len: usize) -> Result<&[u8]> {
        let base = self.layout.segments;
        let out_of_range = || self.damaged(at, "a lookup runs past the end of its section");
        let end = at.checked_add(len).filter(|&e| e <= self.layout.page_crcs);
        let end = end.ok_or_else(out_of_range)?;
        if len == 0 {
            return Ok(&[]);
        }
        let first = at.checked_sub(base).ok_or_else(out_of_range)? / SNAPSHOT_PAGE;
        for page in first..=(end - 1 - base) / SNAPSHOT_PAGE {
            let (word, bit) = (page / 64, 1u64 << (page % 64));
            if self.checked[word].load(Ordering::Relaxed) & bit != 0 {
                continue;
            }
            let start = base + page * SNAPSHOT_PAGE;
            let computed = crc32fast::hash(&self.map[start..start + SNAPSHOT_PAGE]);
            let stored = LE::read_u32(&self.map[self.layout.page_crcs + page * 4..]);
            if computed != stored {
                let damage = Damage::Checksum {
                    what: "index snapshot page",
                    stored,
                    computed,
                };
                return Err(self.damaged(start, damage));
            }
            self.checked[word].fetch_or(bit, Ordering::Relaxed);
        }
        Ok(&self.map[at..end])
    }

    fn damaged(&self, offset: usize, reason: impl std::fmt::Display) -> Error {
        Error::corrupt(
            &self.path,
            offset as u64,
            format!("{reason} (the index snapshot is a cache: remove it and reopen to rebuild it from the log)"),
        )
    }

    /// The slot of `key` in an open-addressing table of `slots` slots of `len` bytes at `at`
    /// (the key at `key_at` of a slot; a zero at `used_at` marks a free one, which ends the
    /// probe), or `None`.
    fn probe(
        &self,
        (at, slots, len): (usize, u64, usize),
        key_at: usize,
        used_at: usize,
        key: u64,
    ) -> Result<Option<&[u8]>> {
        let slots = slots as usize;
        let mut i = (key as usize) & slots.wrapping_sub(1);
        for _ in 0..slots {
            let slot = self.bytes(at + i * len, len)?;
            if LE::read_u64(&slot[used_at..]) == 0 {
                return Ok(None);
            }
            if LE::read_u64(&slot[key_at..]) == key {
                return Ok(Some(slot));
            }
            i = (i + 1) & (slots - 1);
        }
        Ok(None)
    }

    /// The entry of the stream that owns `hash` in the table, if any.
    pub fn stream(&self, hash: u64) -> Result<Option<BaseEntry>> {
        let table = (
            self.layout.streams,
            self.header.stream_slots,
            STREAM_SLOT_LEN,
        );
        let slot = self.probe(table, SLOT_HASH_AT, SLOT_LOCATION_AT, hash)?;
        Ok(slot.map(decode_entry))
    }

    /// The entry of a stream whose hash another stream owns.
    pub fn collided(&self, name: &str) -> Option<BaseEntry> {
        self.collided.get(name).copied()
    }

    /// Every stream of the table, as (hash, entry).
    pub fn hashed_streams(&self) -> Result<Vec<(u64, BaseEntry)>> {
        let slots = self.header.stream_slots as usize;
        let table = self.bytes(self.layout.streams, slots * STREAM_SLOT_LEN)?;
        Ok(table
            .chunks_exact(STREAM_SLOT_LEN)
            .filter(|s| LE::read_u64(&s[SLOT_LOCATION_AT..]) != 0)
            .map(|s| (LE::read_u64(&s[SLOT_HASH_AT..]), decode_entry(s)))
            .collect())
    }

    /// Every stream whose hash another stream owns, as (name, entry).
    pub fn collided_streams(&self) -> Vec<(Box<str>, BaseEntry)> {
        self.collided
            .iter()
            .map(|(name, e)| (name.clone(), *e))
            .collect()
    }

    /// Checkpoints `from..to` of the stream of `entry` (indexes among its checkpoints).
    pub fn checkpoints(&self, entry: &BaseEntry, from: u64, to: u64) -> Result<Vec<u64>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let bad = || {
            self.damaged(
                self.layout.checkpoints,
                "a stream's checkpoints lie outside the array",
            )
        };
        let first = entry.first_checkpoint.checked_add(from).ok_or_else(bad)?;
        let count = to - from;
        if first
            .checked_add(count)
            .is_none_or(|end| end > self.header.checkpoints)
        {
            return Err(bad());
        }
        let at = self.layout.checkpoints + first as usize * 8;
        let raw = self.bytes(at, count as usize * 8)?;
        Ok(raw.chunks_exact(8).map(LE::read_u64).collect())
    }

    /// The whole checkpoint array, as bytes (8 per checkpoint).
    pub fn checkpoint_array(&self) -> Result<&[u8]> {
        self.bytes(
            self.layout.checkpoints,
            self.header.checkpoints as usize * 8,
        )
    }

    /// The sequence number and location of the newest remembered id with key `key`.
    pub fn id(&self, key: u64) -> Result<Option<(u64, u64)>> {
        let table = (self.layout.id_table, self.header.id_slots, ID_SLOT_LEN);
        let Some(slot) = self.probe(table, ID_SLOT_KEY_AT, ID_SLOT_INDEX_AT, key)? else {
            return Ok(None);
        };
        let index = LE::read_u64(&slot[ID_SLOT_INDEX_AT..]) - 1;
        let (found, location) = self.ring_entry(index)?;
        if found != key {
            return Err(self.damaged(
                self.layout.id_table,
                "an id slot and its ring entry disagree",
            ));
        }
        let seq = self.header.id_seq_end - self.header.ids + index;
        Ok(Some((seq, location)))
    }

    /// The ring entry `index`: key and location.
    fn ring_entry(&self, index: u64) -> Result<(u64, u64)> {
        if index >= self.header.ids {
            return Err(self.damaged(self.layout.id_table, "an id slot points past the ring"));
        }
        let e = self.bytes(
            self.layout.id_ring + index as usize * ID_ENTRY_LEN,
            ID_ENTRY_LEN,
        )?;
        Ok((LE::read_u64(e), LE::read_u64(&e[8..])))
    }

    /// The remembered ids whose sequence number is at least `from`, oldest first, as
    /// (key, location).
    pub fn ids_from(&self, from: u64) -> Result<Vec<(u64, u64)>> {
        let first_seq = self.header.id_seq_end - self.header.ids;
        let skip = from.saturating_sub(first_seq).min(self.header.ids);
        let at = self.layout.id_ring + skip as usize * ID_ENTRY_LEN;
        let raw = self.bytes(at, (self.header.ids - skip) as usize * ID_ENTRY_LEN)?;
        Ok(raw
            .chunks_exact(ID_ENTRY_LEN)
            .map(|e| (LE::read_u64(e), LE::read_u64(&e[8..])))
            .collect())
    }

    fn read_collided(&self) -> Result<HashMap<Box<str>, BaseEntry>> {
        let raw = self.bytes(self.layout.collided, self.header.collided_bytes as usize)?;
        let mut out = HashMap::new();
        let mut at = 0;
        let bad = |at: usize| {
            self.damaged(
                self.layout.collided + at,
                "a collided stream entry is malformed",
            )
        };
        for _ in 0..self.header.collided {
            let len = usize::from(*raw.get(at).ok_or_else(|| bad(at))?);
            let name = raw.get(at + 1..at + 1 + len).ok_or_else(|| bad(at))?;
            let name = std::str::from_utf8(name).map_err(|_| bad(at))?;
            let fields = raw
                .get(at + 1 + len..at + 1 + len + 24)
                .ok_or_else(|| bad(at))?;
            out.insert(
                name.into(),
                BaseEntry {
                    last_version: LE::read_u64(fields),
                    last_location: LE::read_u64(&fields[8..]),
                    first_checkpoint: LE::read_u64(&fields[16..]),
                },
            );
            at += 1 + len + 24;
        }
        if at != raw.len() {
            return Err(bad(at));
        }
        Ok(out)
    }
}

fn decode_entry(slot: &[u8]) -> BaseEntry {
    BaseEntry {
        last_version: LE::read_u64(&slot[SLOT_VERSION_AT..]),
        last_location: LE::read_u64(&slot[SLOT_LOCATION_AT..]),
        first_checkpoint: LE::read_u64(&slot[SLOT_CHECKPOINT_AT..]),
    }
}
