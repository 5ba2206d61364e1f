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

pub(crate) use tail::{judge as judge_tail, nonzero_from};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{
    read_frame, Damage, FrameFault, Manifest, RecordView, SegmentEnd, HEADER_BASE_AT, HEADER_SEQ_AT,
};
use crate::fs::dir::{list_segments, segment_file_name, MANIFEST_FILE, SNAPSHOT_FILE};
use crate::fs::manifest;
use crate::fs::segment::Segment;
use crate::index::builder::IndexBuilder;
use crate::index::ids::{id_key, IdWindow};
use crate::index::mapped::MappedIndex;
use crate::index::persist::fingerprint;
use crate::index::side_file::{index_path, SegmentIndex};
use crate::index::{Layer, StreamHasher, StreamIndex, CHECKPOINT_INTERVAL};
use crate::log::scan::{covers, ends_at, walk_frames, walk_frames_from, Walked};
use crate::log::Snapshot;

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
    /// The position up to which the stream index and the ids came from the index snapshot
    /// (`INDEX`), so that opening indexed only the events from there on; `None` if no
    /// snapshot was used.
    pub snapshot_position: Option<u64>,
    /// Why the index snapshot in the directory was not used, if there was one that was not
    /// (damaged, stale, or written by a build that hashes names differently); opening then
    /// read the side files instead, and the next snapshot replaces it.
    pub snapshot_ignored: Option<String>,
    /// Read-only opening only: what follows the tail's last whole frame, left as it was
    /// found (a write in progress beside a live writer, or a torn tail that the next writable
    /// opening judges and cuts). `None` when the data simply ends.
    pub unread_tail: Option<TailCut>,
    /// How long opening took.
    pub duration: Duration,
}

/// Whether opening may change files. A writable opening cuts a torn tail, writes the side
/// files it rebuilds and removes the temporary files a crash left; a read-only one, which
/// may run beside a live writer in another process, only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    ReadWrite,
    ReadOnly,
}

/// The end of the tail cut off while opening: bytes of writes that a crash interrupted before
/// they were synced, or bytes after the end of the data that no frame explains. (For
/// [`OpenReport::unread_tail`]: what a read-only opening left unread there.)
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
    /// The last frame of each sealed segment.
    pub sealed_ends: Vec<SegmentEnd>,
    /// Offset in the tail segment after its last frame.
    pub tail_end: usize,
    pub next_position: u64,
    /// Offset and CRC of the tail segment's last frame, if it has one.
    pub last_frame: Option<(usize, u32)>,
    pub streams: StreamIndex,
    pub ids: IdWindow,
    pub report: OpenReport,
}

impl Recovered {
    /// For a handle without a writer: the committed log as found, the stream index and the
    /// report.
    pub fn into_read_only(self) -> (Snapshot, StreamIndex, OpenReport) {
        let committed = Snapshot {
            segments: Arc::new(self.segments),
            tail_end: self.tail_end,
            next_position: self.next_position,
        };
        (committed, self.streams, self.report)
    }
}

/// The index of the log as opening found it.
struct Indexed {
    /// The last frame of each sealed segment.
    sealed_ends: Vec<SegmentEnd>,
    walked: Walked,
    live: Layer,
    ids: IdWindow,
}

/// Opens and checks every segment of `dir`, creating the first one in an empty store.
pub(crate) fn recover(
    dir: &Path,
    segment_size: u64,
    dedup_window: u64,
    hasher: StreamHasher,
    access: Access,
) -> Result<Recovered> {
    let started = Instant::now();
    let (segments, manifest, created) = open_segments(dir, segment_size, access)?;
    let mut segments: Vec<Arc<Segment>> = segments.into_iter().map(Arc::new).collect();
    let tail = segments
        .pop()
        .ok_or_else(|| Error::InvalidInput("no segment".into()))?;
    let log = LogParts {
        dir,
        sealed: &segments,
        tail: &tail,
        window: dedup_window,
        hasher,
        access,
    };
    let mut rebuilt_indexes = Vec::new();
    let (base, mut snapshot_ignored) =
        match MappedIndex::open(dir, fingerprint(hasher), CHECKPOINT_INTERVAL as u32) {
            Ok(None) => (None, None),
            Ok(Some(base)) => match log.check_snapshot(&base, dedup_window) {
                Ok(()) => (Some(Arc::new(base)), None),
                Err(reason) => (None, Some(reason)),
            },
            Err(reason) => (None, Some(reason)),
        };
    let indexed = match &base {
        Some(base) => match log.index_after(base, &mut rebuilt_indexes) {
            // A damaged page of the snapshot: it is a cache, so open without it.
            Err(Error::Corrupt { file, reason, .. }) if file == dir.join(SNAPSHOT_FILE) => {
                snapshot_ignored = Some(reason);
                None
            }
            other => Some(other?),
        },
        None => None,
    };
    let (indexed, base) = match indexed {
        Some(indexed) => (indexed, base),
        None => (log.index_all(&mut rebuilt_indexes)?, None),
    };
    let Indexed {
        sealed_ends,
        walked,
        live,
        ids,
    } = indexed;

    let closed = manifest
        .filter(|m| m.tail == tail.header())
        .and_then(|m| m.closed);
    let unread_tail =
        (access == Access::ReadOnly && walked.fault != FrameFault::End).then(|| TailCut {
            file: tail.path().to_path_buf(),
            offset: walked.end as u64,
            reason: walked.fault.to_string(),
        });
    let judged = match access {
        // A segment this opening created holds nothing to judge (reading its zeros would
        // cost a pass over the whole file).
        Access::ReadWrite if !created => end_of_tail(&tail, &walked, closed)?,
        Access::ReadWrite | Access::ReadOnly => None,
    };
    let cut = match judged {
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
        None if access == Access::ReadWrite => {
            tail.sync_data()?;
            None
        }
        None => None,
    };
    segments.push(tail);
    let snapshot_position = base.as_ref().map(|b| b.header().end_position);
    let streams = StreamIndex::new(hasher, base, live);
    let report = OpenReport {
        segments: segments.len(),
        events: walked.next_position,
        streams: streams.len(),
        cut,
        rebuilt_indexes,
        snapshot_position,
        snapshot_ignored,
        unread_tail,
        duration: started.elapsed(),
    };
    Ok(Recovered {
        manifest,
        segments,
        sealed_ends,
        tail_end: walked.end,
        next_position: walked.next_position,
        last_frame: walked.last_frame,
        streams,
        ids,
        report,
    })
}

/// The segments of a store being opened, and what indexing them needs.
struct LogParts<'a> {
    dir: &'a Path,
    sealed: &'a [Arc<Segment>],
    tail: &'a Arc<Segment>,
    window: u64,
    hasher: StreamHasher,
    access: Access,
}

impl LogParts<'_> {
    /// Segment `seq`, sealed or the tail.
    fn segment(&self, seq: u64) -> Option<&Arc<Segment>> {
        let i = usize::try_from(seq).ok()?;
        self.sealed
            .get(i)
            .or((i == self.sealed.len()).then_some(self.tail))
    }

    /// Whether the log still holds every frame the snapshot names as the last of its segment,
    /// intact and where it was; the reason not to use the snapshot if not.
    fn check_snapshot(&self, base: &MappedIndex, window: u64) -> std::result::Result<(), String> {
        let h = base.header();
        if h.ids < window.min(h.id_seq_end) {
            return Err(format!(
                "it remembers {} ids, fewer than the {window} of the dedup window (which grew \
                 since it was written)",
                h.ids
            ));
        }
        let ends = base.segments();
        let last = ends.len() - 1;
        if ends[last].end_position != base.header().end_position {
            return Err("its end position is not that of its last frame".into());
        }
        for (seq, end) in ends.iter().enumerate() {
            let segment = self
                .segment(seq as u64)
                .ok_or_else(|| format!("it names segment {seq}, which the store does not have"))?;
            // A sealed segment ends with that frame (and the next one starts after it).
            let sealed_end = seq == last
                || (ends_at(segment, end)
                    && self.segment(seq as u64 + 1).map(|s| s.base_position())
                        == Some(end.end_position));
            if !covers(segment, end) || !sealed_end {
                return Err(format!(
                    "the log does not match it: {} does not end at offset {} with the frame \
                     the snapshot names",
                    segment.path().display(),
                    end.data_end
                ));
            }
        }
        Ok(())
    }

    /// Indexes the log after the snapshot `base`: the rest of the segment holding its end
    /// position (walked), the side files of later sealed segments, and the tail (walked
    /// whole, so that its damage is found, but indexed only from the end position on).
    fn index_after(
        &self,
        base: &Arc<MappedIndex>,
        rebuilt: &mut Vec<IndexRebuild>,
    ) -> Result<Indexed> {
        let mut builder = IndexBuilder::new(self.hasher, Some(base)).over(self.sealed);
        let mut ids = IdWindow::new(self.window, Some(Arc::clone(base)));
        let ends = base.segments();
        let last = ends.len() - 1;
        let end = ends[last];
        let from = base.header().end_position;
        let mut sealed_ends = ends[..last].to_vec();
        if last < self.sealed.len() {
            // The end position is inside (or at the end of) a sealed segment.
            let segment = &self.sealed[last];
            let durable = read_frame(
                segment
                    .bytes()
                    .get(end.last_frame_offset as usize..)
                    .unwrap_or_default(),
            )
            .map_or(segment.base_position(), |f| f.header.durable);
            let start = Walked {
                end: end.data_end as usize,
                fault: FrameFault::End,
                next_position: from,
                durable,
                last_frame: Some((end.last_frame_offset as usize, end.last_frame_crc)),
            };
            let walked = walk_frames_from(segment, start, |ev, location| {
                index_event(&mut builder, &mut ids, ev, location)
            });
            let walked = checked(&mut builder, walked)?.sealed(segment)?;
            let next_base = self.segment(last as u64 + 1).map(|s| s.base_position());
            if next_base != Some(walked.next_position) {
                return Err(Error::corrupt(
                    segment.path(),
                    walked.end as u64,
                    format!(
                        "sealed segment ends at position {}, but the next one starts at {:?}",
                        walked.next_position, next_base
                    ),
                ));
            }
            sealed_ends.push(end_for_snapshots(segment, walked.segment_end()));
            let mut next_position = walked.next_position;
            for (i, segment) in self.sealed.iter().enumerate().skip(last + 1) {
                let index = load_or_rebuild(self.dir, segment, true, self.access, rebuilt)?;
                next_position =
                    self.add_sealed(&mut builder, &mut ids, i, &index, next_position)?;
                sealed_ends.push(end_for_snapshots(segment, index.end));
            }
            return self.index_tail(builder, ids, sealed_ends, next_position, from);
        }
        let tail_base = self.tail.base_position();
        self.index_tail(builder, ids, sealed_ends, tail_base, from)
    }

    /// Walks the tail from `first_position` (its base, or where the sealed segments end),
    /// indexing its events from position `index_from` on, and finishes the index. A walk
    /// that stops below `index_from` met damage to data the index snapshot proves synced.
    fn index_tail(
        &self,
        mut builder: IndexBuilder<'_>,
        mut ids: IdWindow,
        sealed_ends: Vec<SegmentEnd>,
        first_position: u64,
        index_from: u64,
    ) -> Result<Indexed> {
        let walked = walk_frames(self.tail, first_position, |ev, location| {
            if ev.position < index_from {
                return Ok(());
            }
            index_event(&mut builder, &mut ids, ev, location)
        });
        let walked = checked(&mut builder, walked)?;
        if walked.next_position < index_from {
            return Err(Error::corrupt(
                self.tail.path(),
                walked.end as u64,
                format!(
                    "{}; yet the index snapshot was written when every position below \
                     {index_from} was on stable storage, so acknowledged data was damaged",
                    walked.fault
                ),
            ));
        }
        Ok(Indexed {
            sealed_ends,
            walked,
            live: builder.finish()?,
            ids,
        })
    }

    /// Indexes the whole log: every sealed segment's side file (rebuilding any that is
    /// missing, stale or damaged), then the tail.
    fn index_all(&self, rebuilt: &mut Vec<IndexRebuild>) -> Result<Indexed> {
        let mut builder = IndexBuilder::new(self.hasher, None).over(self.sealed);
        let mut ids = IdWindow::new(self.window, None);
        let mut next_position = 0;
        let mut sealed_ends = Vec::with_capacity(self.sealed.len());
        let need_ids = segments_needing_ids(self.dir, self.sealed, self.window);
        for (i, (segment, with_ids)) in self.sealed.iter().zip(need_ids).enumerate() {
            let index = load_or_rebuild(self.dir, segment, with_ids, self.access, rebuilt)?;
            next_position = self.add_sealed(&mut builder, &mut ids, i, &index, next_position)?;
            sealed_ends.push(end_for_snapshots(segment, index.end));
        }
        self.index_tail(builder, ids, sealed_ends, next_position, 0)
    }

    /// Adds what the side file of sealed segment `i` says (its streams' spans and its ids),
    /// checking that it starts at `next_position` and ends where the next segment starts;
    /// returns its end position.
    fn add_sealed(
        &self,
        builder: &mut IndexBuilder<'_>,
        ids: &mut IdWindow,
        i: usize,
        index: &SegmentIndex,
        next_position: u64,
    ) -> Result<u64> {
        let segment = &self.sealed[i];
        let next_base = self.segment(i as u64 + 1).map_or(0, |s| s.base_position());
        if index.base_position != next_position || index.end.end_position != next_base {
            return Err(Error::corrupt(
                segment.path(),
                0,
                format!(
                    "segment holds positions {}..{}, but the previous segment ends at \
                     {next_position} and the next one starts at {next_base}",
                    index.base_position, index.end.end_position
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
                .map_err(|reason| match builder.failure() {
                    Some(e) => e,
                    None => Error::corrupt(segment.path(), 0, reason),
                })?;
        }
        ids.reserve(index.ids.len());
        for e in &index.ids {
            let stream = &index.streams[e.stream as usize].name;
            ids.insert(id_key(stream, e.id), e.location);
        }
        Ok(index.end.end_position)
    }
}

/// The result of a walk that fed `builder`: the builder's own failure (the snapshot could not
/// be read) comes first, as the walk's error then says nothing of the log.
fn checked(builder: &mut IndexBuilder<'_>, walked: Result<Walked>) -> Result<Walked> {
    match builder.failure() {
        Some(e) => Err(e),
        None => walked,
    }
}

/// Adds one event met while walking to the index and the ids.
fn index_event(
    builder: &mut IndexBuilder<'_>,
    ids: &mut IdWindow,
    ev: &RecordView<'_>,
    location: u64,
) -> std::result::Result<(), Damage> {
    builder.add_event(ev.stream, ev.version, ev.prev, location)?;
    if let Some(id) = ev.id {
        ids.insert(id_key(ev.stream, id), location);
    }
    Ok(())
}

/// Opens every segment file in order, checking that none is missing (by their sequence numbers
/// and the manifest, which is returned as found); creates the first segment of an empty store
/// (a read-only opening refuses a directory without segments instead), and says whether it
/// did.
fn open_segments(
    dir: &Path,
    segment_size: u64,
    access: Access,
) -> Result<(Vec<Segment>, Option<Manifest>, bool)> {
    let writable = access == Access::ReadWrite;
    // The manifest first: beside a live writer, which records a new segment in the manifest
    // before writing to it, the segments listed after it are then at least as new.
    let manifest = manifest::read(dir)?;
    let mut segments = Vec::new();
    for (i, (base, path)) in list_segments(dir, writable)?.into_iter().enumerate() {
        let segment = Segment::open(&path, base, writable)?;
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
    check_manifest(dir, manifest.as_ref(), &segments, access)?;
    let created = segments.is_empty();
    if created {
        if !writable {
            return Err(Error::not_a_store(dir));
        }
        segments.push(Segment::create(dir, 0, 0, segment_size)?);
    }
    if segments[0].base_position() != 0 {
        return Err(Error::corrupt(
            segments[0].path(),
            HEADER_BASE_AT as u64,
            "the first segment does not start at position 0: segments are missing",
        ));
    }
    Ok((segments, manifest, created))
}

/// Checks the segment files against the tail segment the manifest names. A segment one past
/// it (or the first segment, without a manifest) is accepted if it is empty: a crash came
/// between creating it and recording it (the writer records it before its first write).
/// Read-only, the manifest was read before the segments were listed, so a live writer may
/// have added any number of segments since: only the one it names must be there.
fn check_manifest(
    dir: &Path,
    manifest: Option<&Manifest>,
    segments: &[Segment],
    access: Access,
) -> Result<()> {
    let read_only = access == Access::ReadOnly;
    let Some(m) = manifest.map(|m| m.tail) else {
        return match segments {
            _ if read_only => Ok(()),
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
        Some(tail)
            if read_only && tail.seq() > m.seq && segments.iter().any(|s| s.header() == m) =>
        {
            Ok(())
        }
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
fn segments_needing_ids(dir: &Path, sealed: &[Arc<Segment>], window: u64) -> Vec<bool> {
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
/// written, unless read-only) if the file is missing, damaged or does not describe the
/// segment (beside a live writer, a segment it sealed a moment ago has no side file yet).
fn load_or_rebuild(
    dir: &Path,
    segment: &Segment,
    with_ids: bool,
    access: Access,
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
    let reason = match access {
        Access::ReadOnly => format!("{problem}; kept in memory (read-only)"),
        Access::ReadWrite => match index.write(dir) {
            Ok(()) => problem,
            Err(e) => format!("{problem}; kept in memory, not written: {e}"),
        },
    };
    rebuilt.push(IndexRebuild { file: path, reason });
    if !with_ids {
        index.ids = Vec::new();
    }
    Ok(index)
}

/// The end of sealed `segment` that index snapshots record: its original end if it was
/// rewritten (which [`covers`] accepts however often it is rewritten again), else `end`.
fn end_for_snapshots(segment: &Segment, end: SegmentEnd) -> SegmentEnd {
    segment.original_end().unwrap_or(end)
}
