//! Room in the tail: growing an empty tail for a large append, rolling to a new segment (and
//! sealing the old one, with its index side file written in the background), keeping the
//! manifest up to date, and the clean close.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::Writer;
use crate::error::Result;
use crate::format::{Manifest, SEGMENT_HEADER_LEN};
use crate::fs::dir::postings_file_name;
use crate::fs::manifest;
use crate::fs::segment::Segment;
use crate::index::postings::write_postings;
use crate::index::side_file::SegmentIndex;

impl Writer {
    /// Makes sure a frame of `frame_len` bytes fits after what is staged in the tail: grows an
    /// empty tail, or (with nothing staged: [`Writer::commit`] writes what is staged first)
    /// syncs the tail, creates the next segment, records it in the manifest and leaves the
    /// sealed one's index side file to a background thread.
    pub(super) fn make_room(&mut self, frame_len: usize) -> Result<()> {
        if self.fits(frame_len) {
            return Ok(());
        }
        let tail = self.tail();
        let needed = SEGMENT_HEADER_LEN + frame_len;
        let result = if self.state.tail_end == SEGMENT_HEADER_LEN {
            tail.grow(needed).map(|grown| {
                let segments = Arc::make_mut(&mut self.state.segments);
                let last = segments.len() - 1;
                segments[last] = Arc::new(grown);
            })
        } else {
            self.roll(&tail, needed)
        };
        if let Err(e) = result {
            return Err(self.poison(e));
        }
        let tail = self.tail();
        if let Some(flusher) = &self.flusher {
            flusher.set_segment(Arc::clone(&tail));
        }
        self.write_start.segment_seq = tail.seq();
        self.write_start.offset = self.state.tail_end;
        Ok(())
    }

    /// Seals `tail` and starts the next segment, of at least `needed` bytes. Order matters for
    /// recovery: the sealed segment is synced before its successor exists, and the successor
    /// is in the manifest before anything is written to it.
    pub(super) fn roll(&mut self, tail: &Arc<Segment>, needed: usize) -> Result<()> {
        let capacity = self.options.segment_size.max(needed as u64);
        let base = self.state.next_position;
        self.sync_tail(tail, base)?;
        let next = Segment::create(&self.dir, base, tail.seq() + 1, capacity)?;
        Arc::make_mut(&mut self.state.segments).push(Arc::new(next));
        self.record_manifest(None)?;
        self.sealed_ends.push(self.tail_frame_end());
        self.state.tail_end = SEGMENT_HEADER_LEN;
        self.last_crc = 0;
        self.last_frame_offset = 0;
        self.unsynced = false;
        self.write_index_file(Arc::clone(tail));
        Ok(())
    }

    /// Writes the manifest if it does not name the tail, or records a clean close (`closed`,
    /// see [`Manifest::closed`]) other than the one asked for.
    pub(super) fn record_manifest(&mut self, closed: Option<(u64, u32)>) -> Result<()> {
        let wanted = Manifest {
            tail: self.tail().header(),
            closed,
        };
        if self.manifest != Some(wanted) {
            manifest::write(&self.dir, &wanted)?;
            self.manifest = Some(wanted);
        }
        Ok(())
    }

    /// Writes, on a background thread, the type and category index of every sealed segment
    /// that has none (a store written before these files existed, or restored from a
    /// backup). Compaction, erasure and closing stop it between two segments (the next
    /// writable opening writes the rest).
    pub(super) fn write_missing_postings(&mut self) {
        let segments = &self.state.segments;
        let missing: Vec<Arc<Segment>> = segments[..segments.len() - 1]
            .iter()
            .filter(|s| {
                !self
                    .dir
                    .join(postings_file_name(s.base_position()))
                    .exists()
            })
            .cloned()
            .collect();
        if missing.is_empty() {
            return;
        }
        let dir = self.dir.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let spawned = std::thread::Builder::new()
            .name("annals-index".into())
            .spawn(move || {
                for segment in missing {
                    if stopped.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = write_postings(&dir, &segment);
                }
            });
        if let Ok(thread) = spawned {
            self.backfill = Some((stop, thread));
        }
    }

    /// Writes the index side file of a segment that was just sealed, on a background thread.
    /// If it fails or never finishes, the next open rebuilds the file.
    fn write_index_file(&mut self, sealed: Arc<Segment>) {
        self.indexers.retain(|t| !t.is_finished());
        let dir = self.dir.clone();
        let spawned = std::thread::Builder::new()
            .name("annals-index".into())
            .spawn(move || {
                if let Ok(index) = SegmentIndex::build(&sealed) {
                    let _ = index.write(&dir);
                }
                let _ = write_postings(&dir, &sealed);
            });
        if let Ok(thread) = spawned {
            self.indexers.push(thread);
        }
    }
}

impl Drop for Writer {
    /// A clean close: stops the flush thread, syncs the tail, writes an index snapshot of
    /// everything, and records in the manifest where the tail's data ends, so that the next
    /// open neither cuts nor looks past synced data, nor indexes anything again.
    fn drop(&mut self) {
        // No thread of this store may touch its files once the directory is unlocked.
        self.finish_indexers();
        self.finish_snapshot();
        if let Some(flusher) = &mut self.flusher {
            flusher.stop();
        }
        if self.sync().is_ok() {
            self.snapshot_at_close();
            let closed = Some((self.state.tail_end as u64, self.last_crc));
            let _ = self.record_manifest(closed);
        }
    }
}
