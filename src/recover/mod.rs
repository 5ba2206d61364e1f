//! Opening a store's log: check the segment files against the manifest, load each sealed
//! segment's index side file (rebuilding any that is missing, stale or damaged), scan only the
//! tail segment, and decide what a bad frame in the tail means.
//!
//! Sealed segments are not scanned when their side files check out, so opening costs time in
//! proportion to the number of segments (and streams per segment), not events. Damage inside
//! a sealed segment is found when it is read, as [`Error::Corrupt`].
//!
//! In the tail segment, the first frame that is incomplete, fails its checksum, or does not
//! continue the chain ends the walk; [`crate::recover::tail::judge`] then looks at everything behind it:
//! an intact frame written after that point was durable proves damage to synced data
//! ([`Error::Corrupt`], nothing is cut); otherwise what follows the last intact frame was never
//! synced (or its sync never returned), so it is zeroed and the cut described in the
//! [`OpenReport`]. A lost segment file is [`Error::Corrupt`] naming it. Opening works on a full
//! disk: a side file that cannot be written is kept in memory and rebuilt again next time.
//!
//! May import `format`, `fs`, `log` and `index`; the writer takes over what it returns.

mod tail;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{FrameFault, Manifest, HEADER_BASE_AT, HEADER_SEQ_AT};
use crate::fs::dir::{list_segments, segment_file_name, MANIFEST_FILE};
use crate::fs::manifest;
use crate::fs::segment::Segment;
use crate::index::ids::{id_key, IdWindow};
use crate::index::side_file::{index_path, SegmentIndex};
use crate::index::{IndexBuilder, StreamHasher, StreamIndex};
use crate::log::scan::{walk_frames, Walked};

/// What opening a store found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// Number of segment files.
    pub segments: usize,
    /// Number of events in the store.
    pub events: u64,
    /// Number of streams in the store.
    pub streams: usize,
    /// The torn tail that was cut, if there was one.
    pub cut: Option<TailCut>,
    /// Index side files that were missing, stale or damaged and were rebuilt from their
    /// segments (in memory only, if the rebuilt file could not be written).
    pub rebuilt_indexes: Vec<IndexRebuild>,
    /// How long opening took.
    pub duration: Duration,
}

/// The end of the tail cut off while opening: bytes of writes that a crash interrupted before
/// they were synced, or bytes after the end of the data that no frame explains.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TailCut {
    /// The tail segment.
    pub file: PathBuf,
    /// Where the cut was made: everything from here on was zeroed.
    pub offset: u64,
    /// What was found at `offset`.
    pub reason: String,
}

/// An index side file rebuilt while opening.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexRebuild {
    /// The side file.
    pub file: PathBuf,
    /// Why it could not be used (and, if so, why the rebuilt file could not be written).
    pub reason: String,
}

/// The state of the log after recovery, ready for the writer and the readers.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// The manifest as found on disk (the writer replaces it before its first write unless it
    /// names the tail and no clean close).
    pub manifest: Option<Manifest>,
    pub segments: Vec<Arc<Segment>>,
    /// Offset in the tail segment after its last frame.
    pub tail_end: usize,
    pub next_position: u64,
    /// CRC of the tail segment's last frame (0 if it has none).
    pub last_crc: u32,
    pub streams: StreamIndex,
    pub ids: IdWindow,
    pub report: OpenReport,
}

/// Opens and checks every segment of `dir`, creating the first one in an empty store.
pub(crate) fn recover(
    dir: &Path,
    segment_size: u64,
    dedup_window: u64,
    hasher: StreamHasher,
) -> Result<Recovered> {
    let started = Instant::now();
    let (mut segments, manifest) = open_segments(dir, segment_size)?;
    let tail = segments
        .pop()
        .ok_or_else(|| Error::InvalidInput("no segment".into()))?;

    let mut builder = IndexBuilder::default();
    let mut ids = IdWindow::new(dedup_window);
    let mut rebuilt_indexes = Vec::new();
    let mut next_position = 0;
    let need_ids = segments_needing_ids(dir, &segments, dedup_window);
    let mut opened = Vec::with_capacity(segments.len() + 1);
    let next_bases: Vec<u64> = segments
        .iter()
        .skip(1)
        .map(|s| s.base_position())
        .chain([tail.base_position()])
        .collect();
    for ((segment, with_ids), next_base) in segments.into_iter().zip(need_ids).zip(next_bases) {
        let index = load_or_rebuild(dir, &segment, with_ids, &mut rebuilt_indexes)?;
        if index.base_position != next_position || index.end_position != next_base {
            return Err(Error::corrupt(
                segment.path(),
                0,
                format!(
                    "segment holds positions {}..{}, but the previous segment ends at \
                     {next_position} and the next one starts at {next_base}",
                    index.base_position, index.end_position
                ),
            ));
        }
        for s in &index.streams {
            builder
                .add_span(
                    &s.name,
                    s.first_version,
                    s.first_prev,
                    s.last_version,
                    s.last_location,
                    &s.checkpoints,
                )
                .map_err(|reason| Error::corrupt(segment.path(), 0, reason))?;
        }
        ids.reserve(index.ids.len());
        for e in &index.ids {
            let stream = &index.streams[e.stream as usize].name;
            ids.insert(id_key(stream, e.id), e.location);
        }
        next_position = index.end_position;
        opened.push(Arc::new(segment));
    }

    let walked = walk_frames(&tail, next_position, |ev, location| {
        builder.add_event(ev.stream, ev.version, ev.prev, location)?;
        if let Some(id) = ev.id {
            ids.insert(id_key(ev.stream, id), location);
        }
        Ok(())
    })?;
    let closed = manifest
        .filter(|m| m.tail == tail.header())
        .and_then(|m| m.closed);
    let cut = match end_of_tail(&tail, &walked, closed)? {
        Some(reason) => {
            tail.zero_from(walked.end)?;
            Some(TailCut {
                file: tail.path().to_path_buf(),
                offset: walked.end as u64,
                reason,
            })
        }
        // What a crashed process left in the page cache is read as written; it becomes
        // durable now, before any new frame claims it is.
        None => {
            tail.sync_data()?;
            None
        }
    };
    opened.push(Arc::new(tail));
    let streams = builder.finish(hasher);
    let report = OpenReport {
        segments: opened.len(),
        events: walked.next_position,
        streams: streams.len(),
        cut,
        rebuilt_indexes,
        duration: started.elapsed(),
    };
    Ok(Recovered {
        manifest,
        segments: opened,
        tail_end: walked.end,
        next_position: walked.next_position,
        last_crc: walked.last_crc(),
        streams,
        ids,
        report,
    })
}

/// Opens every segment file in order, checking that none is missing (by their sequence numbers
/// and the manifest, which is returned as found); creates the first segment of an empty store.
fn open_segments(dir: &Path, segment_size: u64) -> Result<(Vec<Segment>, Option<Manifest>)> {
    let mut segments = Vec::new();
    for (i, (base, path)) in list_segments(dir)?.into_iter().enumerate() {
        let segment = Segment::open(&path, base)?;
        if segment.seq() != i as u64 {
            return Err(Error::corrupt(
                &path,
                HEADER_SEQ_AT as u64,
                format!(
                    "segment sequence number {} where {i} was expected: a segment is missing",
                    segment.seq()
                ),
            ));
        }
        segments.push(segment);
    }
    let manifest = manifest::read(dir)?;
    check_manifest(dir, manifest.as_ref(), &segments)?;
    if segments.is_empty() {
        segments.push(Segment::create(dir, 0, 0, segment_size)?);
    }
    if segments[0].base_position() != 0 {
        return Err(Error::corrupt(
            segments[0].path(),
            HEADER_BASE_AT as u64,
            "the first segment does not start at position 0: segments are missing",
        ));
    }
    Ok((segments, manifest))
}

/// Checks the segment files against the tail segment the manifest names. A segment one past
/// it (or the first segment, without a manifest) is accepted if it is empty: a crash came
/// between creating it and recording it (the writer records it before its first write).
fn check_manifest(dir: &Path, manifest: Option<&Manifest>, segments: &[Segment]) -> Result<()> {
    let Some(m) = manifest.map(|m| m.tail) else {
        return match segments {
            [] => Ok(()),
            [first] if first.is_empty() => Ok(()),
            _ => Err(Error::corrupt(
                dir.join(MANIFEST_FILE),
                0,
                "the manifest is missing but the store has events: cannot tell whether the \
                 newest segments were lost",
            )),
        };
    };
    match segments.last() {
        Some(tail) if tail.header() == m => Ok(()),
        Some(tail) if Some(tail.seq()) == m.seq.checked_add(1) && tail.is_empty() => Ok(()),
        Some(tail) if tail.seq() > m.seq => Err(Error::corrupt(
            dir.join(MANIFEST_FILE),
            HEADER_BASE_AT as u64,
            format!(
                "the manifest names segment {} (position {}) as the tail, but segment {} \
                 holds events",
                m.seq,
                m.base_position,
                tail.seq()
            ),
        )),
        _ => Err(Error::corrupt(
            dir.join(segment_file_name(m.base_position)),
            0,
            format!(
                "segment file missing: the manifest names it as the tail segment (number {}), \
                 so the events from position {} on are gone",
                m.seq, m.base_position
            ),
        )),
    }
}

/// What follows the tail's last intact frame: `None` if nothing, or the reason to cut it; or
/// [`Error::Corrupt`] if it was synced. After a clean close (`closed`: the end of the data and
/// the last frame's CRC then), data that ends earlier was damaged after it was synced, and data
/// that ends exactly there needs no further look; otherwise [`tail::judge`] decides.
fn end_of_tail(
    tail: &Segment,
    walked: &Walked,
    closed: Option<(u64, u32)>,
) -> Result<Option<String>> {
    if let Some((end, crc)) = closed {
        let at_end = walked.end as u64 == end && walked.last_crc() == crc;
        if at_end && walked.fault == FrameFault::End {
            return Ok(None);
        }
        if walked.end as u64 <= end && !at_end {
            return Err(Error::corrupt(
                tail.path(),
                walked.end as u64,
                format!(
                    "{}; the store was closed cleanly with its data synced up to offset {end}, \
                     so acknowledged data was damaged",
                    walked.fault
                ),
            ));
        }
    }
    tail::judge(tail, walked)
}

/// For each sealed segment, whether its ids are needed: those of the newest segments that
/// together hold at least `window` ids (by their side files' headers; a segment whose count
/// is unknown counts as none, so older ones are loaded too).
fn segments_needing_ids(dir: &Path, sealed: &[Segment], window: u64) -> Vec<bool> {
    let mut remaining = window;
    let mut need: Vec<bool> = sealed
        .iter()
        .rev()
        .map(|s| {
            let needed = remaining > 0;
            let count = SegmentIndex::peek_id_count(&index_path(dir, s.base_position()));
            remaining = remaining.saturating_sub(u64::from(count.unwrap_or(0)));
            needed
        })
        .collect();
    need.reverse();
    need
}

/// The index of a sealed segment from its side file, or rebuilt from the segment (and
/// written) if the file is missing, damaged or does not describe the segment.
fn load_or_rebuild(
    dir: &Path,
    segment: &Segment,
    with_ids: bool,
    rebuilt: &mut Vec<IndexRebuild>,
) -> Result<SegmentIndex> {
    let path = index_path(dir, segment.base_position());
    let problem = match SegmentIndex::load(&path, with_ids) {
        Ok(Some(index)) => match index.check_matches(segment) {
            Ok(()) => return Ok(index),
            Err(damage) => damage.to_string(),
        },
        Ok(None) => "missing".to_string(),
        Err(damage) => damage.to_string(),
    };
    let mut index = SegmentIndex::build(segment)?;
    let reason = match index.write(dir) {
        Ok(()) => problem,
        Err(e) => format!("{problem}; kept in memory, not written: {e}"),
    };
    rebuilt.push(IndexRebuild { file: path, reason });
    if !with_ids {
        index.ids = Vec::new();
    }
    Ok(index)
}
