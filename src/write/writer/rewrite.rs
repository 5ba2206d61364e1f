//! What compaction and erasure need of the writer: sealing the tail on demand (only sealed
//! segments are rewritten) and putting a rewritten segment in the log readers see.

use std::sync::Arc;

use super::Writer;
use crate::error::Result;
use crate::format::SEGMENT_HEADER_LEN;
use crate::fs::segment::Segment;

impl Writer {
    /// Seals the tail if it holds any event, so that every event committed so far lies in
    /// a sealed segment, and waits until the side files of segments sealed since opening are
    /// written (none is written after a rewrite of its segment).
    pub fn seal_tail(&mut self) -> Result<()> {
        self.check_writable()?;
        if self.state.tail_end > SEGMENT_HEADER_LEN {
            let tail = self.tail();
            if let Err(e) = self.roll(&tail, 0) {
                return Err(self.poison(e));
            }
            if let Some(flusher) = &self.flusher {
                flusher.set_segment(self.tail());
            }
            *self.committed.write() = self.state.clone();
        }
        self.finish_indexers();
        Ok(())
    }

    /// Waits until the side files of segments sealed since opening are written: none may be
    /// written after a rewrite of its segment (it would describe the old file).
    /// The thread writing missing type and category indexes is stopped between two
    /// segments instead.
    pub fn finish_indexers(&mut self) {
        if let Some((stop, thread)) = self.backfill.take() {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = thread.join();
        }
        for thread in self.indexers.drain(..) {
            let _ = thread.join();
        }
    }

    /// Puts `segment`, a rewrite of the sealed segment with its sequence number, in the log
    /// that later readers see (readers holding the old one keep reading it: its file lives
    /// while mapped).
    pub fn replace_segment(&mut self, segment: Arc<Segment>) {
        let first = self.state.segments[0].seq();
        let i = usize::try_from(segment.seq() - first).unwrap_or(usize::MAX);
        let segments = Arc::make_mut(&mut self.state.segments);
        if i + 1 < segments.len() {
            segments[i] = segment;
            *self.committed.write() = self.state.clone();
        }
    }

    /// Makes appends to `stream` fail with [`Error::Erasing`](crate::Error::Erasing) (`true`)
    /// or succeed again (`false`).
    pub fn set_erasing(&mut self, stream: &str, erasing: bool) {
        match erasing {
            true => self.erasing.insert(stream.to_string()),
            false => self.erasing.remove(stream),
        };
    }

    /// Records that `stream` was erased: index snapshots leave its name out from now on, and
    /// the one on disk is removed if it may hold the name (the one in use holds it, or the
    /// one on disk is not in use: opening ignored it); the next open then reads the side
    /// files, and the next snapshot is written without it.
    /// A stream that has events (appended since, under the same name) is left alone.
    pub fn forget_erased(&mut self, stream: &str) -> Result<()> {
        self.finish_snapshot();
        let index = self.index.read();
        let (_, head) = index.find(stream, |l, s, v| self.state.is_event_at(l, s, v))?;
        drop(index);
        if head.is_some() {
            return Ok(());
        }
        self.erased.insert(stream.to_string());
        let may_hold = match self.index.read().base() {
            Some(base) => base.collided(stream).is_some(),
            None => true,
        };
        if may_hold && self.dir.join(crate::fs::dir::SNAPSHOT_FILE).exists() {
            crate::fs::snapshot::remove(&self.dir)?;
        }
        Ok(())
    }

    /// The sealed segments as the writer has them now, their side files written.
    pub fn sealed_segments(&mut self) -> Vec<Arc<Segment>> {
        self.finish_indexers();
        let segments = &self.state.segments;
        segments[..segments.len() - 1].to_vec()
    }
}
