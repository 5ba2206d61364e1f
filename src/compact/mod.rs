//! Compaction and erasure: rewriting sealed segments without the events that retention,
//! soft deletes or an erasure remove, while appends and reads go on.
//!
//! Each segment is rewritten on its own ([`crate::lifecycle::rewrite_segment`]): its side file
//! is removed first, the new segment file replaces the old one atomically, a new side file is
//! written, and the writer swaps the new file into the log readers see (readers holding an
//! older snapshot keep the old file mapped). A crash at any point leaves the old or the new
//! file of each segment, and at worst a missing side file, which opening rebuilds. Locations
//! never change (the rewritten segment maps original offsets to new ones), so no index that
//! points into the segment is rewritten.
//!
//! May import every folder before `write` and `write`.

mod background;
mod compaction;
mod erasure;
mod reclaimable;

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

pub(crate) use background::Background;
pub(crate) use compaction::compact;
pub(crate) use erasure::erase;
pub(crate) use reclaimable::reclaimable;
pub use reclaimable::Reclaimable;

use crate::error::Result;
use crate::format::RecordView;
use crate::fs::dir::{index_file_name, postings_file_name};
use crate::fs::segment::Segment;
use crate::fs::{remove_file, sync_dir};
use crate::index::postings::write_postings;
use crate::index::side_file::SegmentIndex;
use crate::lifecycle::{rewrite_segment, Retentions};
use crate::read::LogView;
use crate::write::commit::GroupCommit;

/// What [`Store::compact`](crate::Store::compact) removed and reclaimed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactReport {
    /// Sealed segments read.
    pub segments_read: usize,
    /// Segments written anew.
    pub segments_rewritten: usize,
    /// Events removed.
    pub events_removed: u64,
    /// Bytes the rewritten segment files took before.
    pub bytes_before: u64,
    /// Bytes they take now.
    pub bytes_after: u64,
    /// How long it took.
    pub duration: Duration,
}

impl CompactReport {
    /// Bytes reclaimed: `bytes_before - bytes_after`.
    pub fn bytes_reclaimed(&self) -> u64 {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// What [`Store::erase_stream`](crate::Store::erase_stream) removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EraseReport {
    /// Events of the stream removed.
    pub events_removed: u64,
    /// Segments written anew.
    pub segments_rewritten: usize,
    /// Bytes the rewritten segment files took before.
    pub bytes_before: u64,
    /// Bytes they take now.
    pub bytes_after: u64,
    /// How long it took.
    pub duration: Duration,
}

/// What compaction and erasure work on: shared with the background thread, which must not
/// keep the store itself alive.
#[derive(Debug, Clone)]
pub(crate) struct Maintainer {
    /// The store's directory.
    pub dir: PathBuf,
    /// The writer (held only for moments).
    pub commit: Arc<GroupCommit>,
    /// The log and index readers see.
    pub view: LogView,
    /// Every stream's retention rules.
    pub retention: Arc<Retentions>,
    /// Compactions and erasures run one at a time.
    pub one_at_a_time: Arc<Mutex<()>>,
}

/// How a compaction reports progress and keeps to a budget of I/O.
pub(crate) struct Pace<'a> {
    /// Called with (steps done, steps in all).
    pub progress: &'a mut dyn FnMut(u64, u64),
    /// Called with the bytes read or written by each step; `false` stops the compaction
    /// between two segments (the store is closing).
    pub spent: &'a mut dyn FnMut(u64) -> bool,
}

/// What rewriting one segment removed and reclaimed.
struct Replaced {
    removed: u64,
    bytes_before: u64,
    bytes_after: u64,
}

impl Maintainer {
    /// Rewrites the sealed `segment` without the events `remove` picks and puts the new file
    /// in the log: side file removed, segment replaced, side file written anew, writer told.
    /// `None` if it removes nothing.
    fn replace(
        &self,
        segment: &Segment,
        remove: impl FnMut(&RecordView<'_>) -> bool,
    ) -> Result<Option<Replaced>> {
        let dir = self.dir.as_path();
        let base = segment.base_position();
        for side in [index_file_name(base), postings_file_name(base)] {
            let side = dir.join(side);
            match remove_file(&side) {
                Ok(()) => sync_dir(dir)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::Error::io("remove index file", side, e)),
            }
        }
        let Some(rewrite) = rewrite_segment(dir, segment, remove)? else {
            // Nothing removed: the side files come back as they were.
            SegmentIndex::build(segment)?.write(dir)?;
            write_postings(dir, segment)?;
            return Ok(None);
        };
        SegmentIndex::build(&rewrite.segment)?.write(dir)?;
        write_postings(dir, &rewrite.segment)?;
        self.commit
            .writer()
            .replace_segment(Arc::new(rewrite.segment));
        Ok(Some(Replaced {
            removed: rewrite.removed,
            bytes_before: rewrite.bytes_before,
            bytes_after: rewrite.bytes_after,
        }))
    }
}
