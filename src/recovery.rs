//! Opening a store's log: load each sealed segment's index side file (rebuilding any that is
//! missing, stale or damaged), scan only the tail segment, and cut a torn tail.
//!
//! Sealed segments are not scanned when their side files check out, so opening costs time in
//! proportion to the number of segments (and streams per segment), not events. Damage inside
//! a sealed segment is found when it is read, as [`Error::Corrupt`].
//!
//! In the tail segment, the first frame that is incomplete, fails its checksum, or does not
//! continue the chain (position, previous CRC, write sequence) marks the end of what was
//! written: the rest of the file is zeroed and the cut is described in the [`OpenReport`].
//! One exception keeps invariant 5 ("opening never loses an acknowledged event"): if a damaged
//! frame is followed by an intact frame that chains to it and comes from a *later* write, the
//! damaged frame was once complete, so this is damage rather than a torn write, and opening
//! fails with [`Error::Corrupt`] instead of dropping acknowledged events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dedup::{id_key, IdWindow};
use crate::dir::list_segments;
use crate::error::{Error, Result};
use crate::format::{peek_frame_header, read_frame, FrameFault};
use crate::index::{IndexBuilder, StreamHasher, StreamIndex};
use crate::scan::walk_frames;
use crate::seg_index::{index_path, SegmentIndex};
use crate::segment::Segment;

/// What opening a store found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// segments.
    pub rebuilt_indexes: Vec<IndexRebuild>,
    /// How long opening took.
    pub duration: Duration,
}

/// A torn tail cut off while opening: bytes of a write that never completed, so never
/// acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub struct IndexRebuild {
    /// The side file.
    pub file: PathBuf,
    /// Why it could not be used.
    pub reason: String,
}

/// The state of the log after recovery, ready for the writer and the readers.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    /// Offset in the tail segment after its last frame.
    pub tail_end: usize,
    pub next_position: u64,
    /// CRC of the tail segment's last frame (0 if it has none).
    pub last_crc: u32,
    /// Write sequence number of the last frame in the log (0 if there is none).
    pub write_seq: u64,
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
    let mut segments = open_segments(dir, segment_size)?;
    let tail = segments
        .pop()
        .ok_or_else(|| Error::InvalidInput("no segment".into()))?;

    let mut builder = IndexBuilder::default();
    let mut ids = IdWindow::new(dedup_window);
    let mut rebuilt_indexes = Vec::new();
    let mut next_position = 0;
    let mut write_seq = 0;
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
        write_seq = index.last_write_seq;
        opened.push(Arc::new(segment));
    }

    let walked = walk_frames(&tail, next_position, write_seq, |ev, location| {
        builder.add_event(ev.stream, ev.version, ev.prev, location)?;
        if let Some(id) = ev.id {
            ids.insert(id_key(ev.stream, id), location);
        }
        Ok(())
    })?;
    let mut cut = None;
    let tail = match &walked.fault {
        FrameFault::End => tail,
        fault => {
            if let Some(later) = later_write_follows(&tail, walked.end, walked.write_seq) {
                return Err(Error::corrupt(
                    tail.path(),
                    walked.end as u64,
                    format!(
                        "{}; an intact frame of a later write follows at offset {later}, \
                         so acknowledged data was damaged (not a torn write)",
                        fault.describe()
                    ),
                ));
            }
            cut = Some(TailCut {
                file: tail.path().to_path_buf(),
                offset: walked.end as u64,
                reason: fault.describe(),
            });
            tail.zero_from(walked.end)?;
            tail
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
        segments: opened,
        tail_end: walked.end,
        next_position: walked.next_position,
        last_crc: walked.last_crc(),
        write_seq: walked.write_seq,
        streams,
        ids,
        report,
    })
}

/// Opens every segment file in order, checking that none is missing; creates the first
/// segment of an empty store.
fn open_segments(dir: &Path, segment_size: u64) -> Result<Vec<Segment>> {
    let mut segments = Vec::new();
    for (i, (base, path)) in list_segments(dir)?.into_iter().enumerate() {
        let segment = Segment::open(&path, base)?;
        if segment.seq() != i as u64 {
            return Err(Error::corrupt(
                &path,
                24,
                format!(
                    "segment sequence number {} where {i} was expected: a segment is missing",
                    segment.seq()
                ),
            ));
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        segments.push(Segment::create(dir, 0, 0, segment_size)?);
    }
    if segments[0].base_position() != 0 {
        return Err(Error::corrupt(
            segments[0].path(),
            16,
            "the first segment does not start at position 0: segments are missing",
        ));
    }
    Ok(segments)
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
            Err(reason) => reason,
        },
        Ok(None) => "missing".to_string(),
        Err(reason) => reason,
    };
    let mut index = SegmentIndex::build(segment)?;
    index.write(dir)?;
    rebuilt.push(IndexRebuild {
        file: path,
        reason: problem,
    });
    if !with_ids {
        index.ids = Vec::new();
    }
    Ok(index)
}

/// If the damaged frame at `offset` has a plausible length and the frame after it is intact,
/// chains to it and was written by a later write than the last intact frame's, the offset of
/// that later frame.
fn later_write_follows(segment: &Segment, offset: usize, last_write_seq: u64) -> Option<usize> {
    let bytes = segment.bytes();
    let damaged = peek_frame_header(&bytes[offset..])?;
    let next = offset + damaged.len as usize;
    let frame = read_frame(bytes.get(next..)?).ok()?;
    (frame.header.prev_crc == damaged.crc && frame.header.write_seq >= last_write_seq + 2)
        .then_some(next)
}
