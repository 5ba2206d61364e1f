//! Writing an index snapshot: the base snapshot (if any) and the frozen layer above it merged
//! into new hash tables, encoded whole, installed atomically and mapped. Runs on a background
//! thread after a roll, and on the writer's thread at a clean close. The byte layout is in
//! [`crate::format::index_snapshot`].

use std::path::Path;
use std::sync::Arc;

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::Result;
use crate::format::{
    SegmentEnd, SnapshotHeader, ID_ENTRY_LEN, ID_SLOT_INDEX_AT, ID_SLOT_KEY_AT, ID_SLOT_LEN,
    SEGMENT_ENTRY_LEN, SLOT_CHECKPOINT_AT, SLOT_HASH_AT, SLOT_LOCATION_AT, SLOT_VERSION_AT,
    SNAPSHOT_PAGE, STREAM_SLOT_LEN,
};
use crate::fs::dir::SNAPSHOT_FILE;
use crate::fs::snapshot;
use crate::index::ids::IdRing;
use crate::index::mapped::{BaseEntry, MappedIndex};
use crate::index::{Layer, StreamEntry, StreamHasher, CHECKPOINT_INTERVAL};

/// A fingerprint of a stream hash, so that a snapshot is only used by builds that hash names
/// the same way.
pub fn fingerprint(hasher: StreamHasher) -> u64 {
    hasher("annals: index snapshot fingerprint")
}

/// What a snapshot is made of.
#[derive(Debug)]
pub struct SnapshotInput {
    /// The stream hash in use.
    pub hasher: StreamHasher,
    /// Every event below it is in `base` or `streams`.
    pub end_position: u64,
    /// The last frame of each segment up to the one holding `end_position`.
    pub segments: Vec<SegmentEnd>,
    /// The snapshot the layers continue, if any.
    pub base: Option<Arc<MappedIndex>>,
    /// The streams appended to since `base`.
    pub streams: Arc<Layer>,
    /// The ids remembered since `base`.
    pub ids: Arc<IdRing>,
    /// How many ids the window holds.
    pub window: u64,
    /// Streams erased (and not appended to since): their entries kept by name are left out,
    /// so that the snapshot holds no erased name.
    pub erased: Vec<String>,
}

/// Writes the snapshot of `input` into `dir` durably and atomically, and maps it.
pub fn write(dir: &Path, input: &SnapshotInput) -> Result<MappedIndex> {
    let encoded = match encode(input) {
        Ok(encoded) => encoded,
        Err(e) => {
            // A damaged page of the old snapshot: remove it, so that the next open rebuilds
            // the index from the log instead of meeting the damage again.
            if matches!(&e, crate::Error::Corrupt { file, .. } if file == &dir.join(SNAPSHOT_FILE))
            {
                let _ = snapshot::remove(dir);
            }
            return Err(e);
        }
    };
    snapshot::write(dir, &encoded)?;
    MappedIndex::open(dir, fingerprint(input.hasher), CHECKPOINT_INTERVAL as u32)
        .map_err(|reason| {
            crate::Error::InvalidInput(format!("index snapshot just written: {reason}"))
        })?
        .ok_or_else(|| crate::Error::InvalidInput("index snapshot just written is missing".into()))
}

/// A stream as the new snapshot holds it.
struct Merged {
    last_version: u64,
    last_location: u64,
    first_checkpoint: u64,
}

/// One stream of the new snapshot: the layer's entry over the base's (the base's first
/// `cp_base` checkpoints, then the layer's), or either alone. Its checkpoints go to `out`.
fn merge(
    out: &mut Vec<u64>,
    base_array: &[u8],
    base: Option<BaseEntry>,
    layer: Option<&StreamEntry>,
) -> Result<Merged> {
    let first_checkpoint = out.len() as u64;
    let (keep, last_version, last_location) = match (base, layer) {
        (Some(_), Some(e)) => (e.cp_base, e.last_version, e.last_location),
        (None, Some(e)) => (0, e.last_version, e.last_location),
        (Some(b), None) => (
            StreamEntry::expected_checkpoints(b.last_version),
            b.last_version,
            b.last_location,
        ),
        (None, None) => (0, 0, 0),
    };
    if let Some(b) = base {
        let range = usize::try_from(b.first_checkpoint)
            .ok()
            .zip(usize::try_from(keep).ok())
            .and_then(|(first, keep)| {
                Some(first.checked_mul(8)?..first.checked_add(keep)?.checked_mul(8)?)
            });
        let raw = range.and_then(|r| base_array.get(r)).ok_or_else(|| {
            crate::Error::InvalidInput(
                "index snapshot: a stream's checkpoints lie outside the array".into(),
            )
        })?;
        out.extend(raw.chunks_exact(8).map(LE::read_u64));
    }
    if let Some(e) = layer {
        out.extend_from_slice(&e.checkpoints);
    }
    Ok(Merged {
        last_version,
        last_location,
        first_checkpoint,
    })
}

/// The size of an open-addressing table for `n` entries: a power of two at most 3/4 full.
fn table_slots(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + n / 3 + 1).next_power_of_two()
    }
}

/// Offset in `b` of the slot for `key` in the open-addressing table of `slots` slots of `len`
/// bytes at `at`: the slot holding `key` already, or the first free one (a zero at `used_at`)
/// of its probe. The table has a free slot: it is at most 3/4 full.
fn place(
    b: &[u8],
    (at, slots, len): (usize, usize, usize),
    key_at: usize,
    used_at: usize,
    key: u64,
) -> usize {
    let mut i = (key as usize) & (slots - 1);
    loop {
        let slot = at + i * len;
        if LE::read_u64(&b[slot + used_at..]) == 0 || LE::read_u64(&b[slot + key_at..]) == key {
            return slot;
        }
        i = (i + 1) & (slots - 1);
    }
}

/// The snapshot's bytes.
pub fn encode(input: &SnapshotInput) -> Result<Vec<u8>> {
    let layer = &*input.streams;
    let base = input.base.as_deref();
    let (base_hashed, base_collided) = match base {
        Some(base) => (base.hashed_streams()?, base.collided_streams()),
        None => (Vec::new(), Vec::new()),
    };
    let base_array = match base {
        Some(base) => base.checkpoint_array()?,
        None => &[],
    };
    let mut checkpoints = Vec::new();
    let mut hashed = Vec::with_capacity(base_hashed.len() + layer.by_hash.len());
    for &(hash, b) in &base_hashed {
        let above = layer.by_hash.get(&hash);
        hashed.push((hash, merge(&mut checkpoints, base_array, Some(b), above)?));
    }
    for (&hash, e) in &layer.by_hash {
        let in_base = match base {
            Some(base) => base.stream(hash)?.is_some(),
            None => false,
        };
        if !in_base {
            hashed.push((hash, merge(&mut checkpoints, base_array, None, Some(e))?));
        }
    }
    let mut collided: Vec<(&str, Merged)> = Vec::new();
    let erased = |name: &str| input.erased.iter().any(|e| e == name);
    for (name, b) in &base_collided {
        if erased(name) {
            continue;
        }
        let above = layer.collided.get(name);
        collided.push((name, merge(&mut checkpoints, base_array, Some(*b), above)?));
    }
    for (name, e) in &layer.collided {
        if base.and_then(|b| b.collided(name)).is_none() && !erased(name) {
            collided.push((name, merge(&mut checkpoints, base_array, None, Some(e))?));
        }
    }

    let oldest = input.ids.next_seq().saturating_sub(input.window);
    let mut ring = match base {
        Some(base) => base.ids_from(oldest)?,
        None => Vec::new(),
    };
    ring.extend(input.ids.ids_from(oldest));
    let skip = ring.len().saturating_sub(input.window as usize);
    let ring = &ring[skip..];

    let stream_slots = table_slots(hashed.len());
    // At most half full: most id lookups are misses (new ids), which probe to a free slot.
    let id_slots = table_slots(2 * ring.len());
    let collided_bytes: usize = collided.iter().map(|(n, _)| 1 + n.len() + 24).sum();
    let mut header = SnapshotHeader {
        end_position: input.end_position,
        segments: input.segments.len() as u64,
        interval: CHECKPOINT_INTERVAL as u32,
        hasher: fingerprint(input.hasher),
        streams: (hashed.len() + collided.len()) as u64,
        stream_slots: stream_slots as u64,
        checkpoints: checkpoints.len() as u64,
        collided: collided.len() as u64,
        collided_bytes: collided_bytes as u64,
        ids: ring.len() as u64,
        id_slots: id_slots as u64,
        id_seq_end: input.ids.next_seq(),
        page_crcs_crc: 0,
    };
    let layout = header
        .layout()
        .ok_or_else(|| crate::Error::InvalidInput("index snapshot too large".into()))?;
    let mut b = vec![0u8; layout.len];

    for (i, s) in input.segments.iter().enumerate() {
        let at = layout.segments + i * SEGMENT_ENTRY_LEN;
        s.encode(&mut b[at..at + SEGMENT_ENTRY_LEN]);
    }
    for (hash, m) in &hashed {
        let table = (layout.streams, stream_slots, STREAM_SLOT_LEN);
        let at = place(&b, table, SLOT_HASH_AT, SLOT_LOCATION_AT, *hash);
        let slot = &mut b[at..at + STREAM_SLOT_LEN];
        LE::write_u64(&mut slot[SLOT_HASH_AT..], *hash);
        LE::write_u64(&mut slot[SLOT_VERSION_AT..], m.last_version);
        LE::write_u64(&mut slot[SLOT_LOCATION_AT..], m.last_location);
        LE::write_u64(&mut slot[SLOT_CHECKPOINT_AT..], m.first_checkpoint);
    }
    for (i, c) in checkpoints.iter().enumerate() {
        LE::write_u64(&mut b[layout.checkpoints + i * 8..], *c);
    }
    let mut at = layout.collided;
    for (name, m) in &collided {
        b[at] = name.len() as u8;
        b[at + 1..at + 1 + name.len()].copy_from_slice(name.as_bytes());
        at += 1 + name.len();
        for v in [m.last_version, m.last_location, m.first_checkpoint] {
            LE::write_u64(&mut b[at..], v);
            at += 8;
        }
    }
    for (n, &(key, location)) in ring.iter().enumerate() {
        let at = layout.id_ring + n * ID_ENTRY_LEN;
        LE::write_u64(&mut b[at..], key);
        LE::write_u64(&mut b[at + 8..], location);
        // The newest id with a key wins its slot.
        let table = (layout.id_table, id_slots, ID_SLOT_LEN);
        let at = place(&b, table, ID_SLOT_KEY_AT, ID_SLOT_INDEX_AT, key);
        LE::write_u64(&mut b[at + ID_SLOT_KEY_AT..], key);
        LE::write_u64(&mut b[at + ID_SLOT_INDEX_AT..], n as u64 + 1);
    }
    for page in 0..layout.pages {
        let start = layout.segments + page * SNAPSHOT_PAGE;
        let crc = crc32fast::hash(&b[start..start + SNAPSHOT_PAGE]);
        LE::write_u32(&mut b[layout.page_crcs + page * 4..], crc);
    }
    header.page_crcs_crc = crc32fast::hash(&b[layout.page_crcs..]);
    let encoded = header.encode();
    b[..encoded.len()].copy_from_slice(&encoded);
    Ok(b)
}
