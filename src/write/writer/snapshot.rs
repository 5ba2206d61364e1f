//! Index snapshots from the writer's side: after a batch, once the log has grown enough since
//! the last one, the tail is synced (a no-op under `Fsync`), the live layers of the stream
//! index and the id window are frozen and a background thread merges them with the current
//! snapshot into a new one; the writer
//! installs it (or, if writing it failed, thaws the frozen layers) at its next batch. A clean
//! close writes a final snapshot of everything, so that the next open indexes nothing.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::Writer;
use crate::error::Result;
use crate::format::{SegmentEnd, SEGMENT_HEADER_LEN};
use crate::index::mapped::MappedIndex;
use crate::index::persist::{self, SnapshotInput};

/// A new snapshot is started once the log has grown by this many times the size of the last
/// one (and by a segment at least): snapshots then add at most as many bytes as the log
/// to what is written, and opening after a crash indexes at most about that much of the log.
const LOG_BYTES_PER_SNAPSHOT_BYTE: u64 = 1;

/// The snapshot being written, and when to start the next.
#[derive(Debug, Default)]
pub(super) struct Snapshots {
    pending: Option<JoinHandle<Result<MappedIndex>>>,
    /// Bytes written to the log since the last snapshot was started.
    grown: u64,
    /// Size of the last snapshot written.
    last_size: u64,
}

impl Snapshots {
    /// `bytes` more were written to the log.
    pub(super) fn grew(&mut self, bytes: u64) {
        self.grown += bytes;
    }
}

impl Writer {
    /// The last frame of the tail now.
    pub(super) fn tail_frame_end(&self) -> SegmentEnd {
        SegmentEnd {
            end_position: self.state.next_position,
            last_frame_offset: self.last_frame_offset as u32,
            last_frame_crc: self.last_crc,
            data_end: self.state.tail_end as u32,
        }
    }

    /// Starts writing a snapshot of everything committed on a background thread, if the log
    /// has grown enough since the last one and none is being written. What it covers is
    /// synced first: a snapshot never indexes an event a crash could take back.
    pub(super) fn start_snapshot(&mut self) {
        let wanted =
            (self.snapshots.last_size * LOG_BYTES_PER_SNAPSHOT_BYTE).max(self.options.segment_size);
        if self.snapshots.grown < wanted
            || self.snapshots.pending.is_some()
            || self.poisoned.is_some()
        {
            return;
        }
        // Under `Fsync` every committed event is synced already.
        if self.flusher.is_some() && self.sync().is_err() {
            return;
        }
        let Some(input) = self.freeze() else {
            return;
        };
        let dir = self.dir.clone();
        let spawned = std::thread::Builder::new()
            .name("annals-snapshot".into())
            .spawn(move || persist::write(&dir, &input));
        match spawned {
            Ok(thread) => {
                self.snapshots.pending = Some(thread);
                self.snapshots.grown = 0;
            }
            Err(_) => self.thaw(),
        }
    }

    /// Installs the snapshot being written if it is done (or thaws the frozen layers if it
    /// failed).
    pub(super) fn poll_snapshot(&mut self) {
        if self
            .snapshots
            .pending
            .as_ref()
            .is_some_and(|t| t.is_finished())
        {
            self.finish_snapshot();
        }
    }

    /// Waits for the snapshot being written, if any, and installs it (or thaws).
    pub(super) fn finish_snapshot(&mut self) {
        let Some(thread) = self.snapshots.pending.take() else {
            return;
        };
        match thread.join() {
            Ok(Ok(written)) => self.install(written),
            _ => self.thaw(),
        }
    }

    /// At a clean close (the tail synced): a snapshot of everything, unless the current one
    /// has it all. Best effort: if it cannot be written, the next open indexes more.
    pub(super) fn snapshot_at_close(&mut self) {
        self.finish_snapshot();
        let end = self.state.next_position;
        let covered = self.index.read().base().map(|b| b.header().end_position);
        if end == 0 || covered == Some(end) || self.poisoned.is_some() {
            return;
        }
        let Some(input) = self.freeze() else {
            return;
        };
        match persist::write(&self.dir, &input) {
            Ok(written) => self.install(written),
            Err(_) => self.thaw(),
        }
    }

    /// Freezes the live layers for a snapshot of everything committed (`None` if layers are
    /// frozen already).
    fn freeze(&mut self) -> Option<SnapshotInput> {
        let mut segments = self.sealed_ends.clone();
        if self.state.tail_end > SEGMENT_HEADER_LEN {
            segments.push(self.tail_frame_end());
        }
        let mut index = self.index.write();
        let base = index.base().cloned();
        let hasher = index.hasher();
        let streams = index.freeze()?;
        drop(index);
        let Some(ids) = self.ids.freeze() else {
            self.index.write().thaw();
            return None;
        };
        Some(SnapshotInput {
            hasher,
            end_position: self.state.next_position,
            segments,
            base,
            streams,
            ids,
            window: self.ids.capacity(),
            erased: self.erased.iter().cloned().collect(),
        })
    }

    fn install(&mut self, written: MappedIndex) {
        self.snapshots.last_size = written.len() as u64;
        let written = Arc::new(written);
        // Freeing a large frozen layer takes a while: not under the index's lock.
        let frozen = self.index.write().install(Arc::clone(&written));
        drop(frozen);
        drop(self.ids.install(written));
    }

    fn thaw(&mut self) {
        self.index.write().thaw();
        self.ids.thaw();
    }
}
