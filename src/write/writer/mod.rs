//! The write path, top to bottom: validate an append; group commit (see [`crate::write::commit`])
//! hands the writer a batch of appends; for each in order, check idempotency and the expected
//! version (against the log and the appends before it in the batch), make room in the tail
//! segment (grow it) and encode one frame into a reused buffer; then one `write` and one
//! `fdatasync` for the whole batch, and only then publish the new committed end and the stream
//! heads. A batch that does not fit in the tail segment is committed in two writes: what fits
//! is written, synced and published first, then the writer rolls to a new segment and goes on;
//! so a failure after a roll never leaves complete frames of a failed append behind.
//!
//! Every frame records the durable position: every event below it was on stable storage when
//! the frame was written (after the `fdatasync` of the previous batch under `Fsync`; after the
//! last background sync that returned under `Buffered`). Recovery uses it to tell a write lost
//! in a crash from damage to synced data.
//!
//! A failed write or sync poisons the writer: every later append fails with
//! [`Error::Poisoned`] until the store is reopened. The failed batch's bytes are zeroed
//! before its callers get their errors, so none of it is found after a reopen. A failed
//! `fdatasync` is never retried.

mod rewrite;
mod roll;
mod snapshot;
mod stage;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::RwLock;

use crate::error::{Error, Result};
use crate::event::AppendResult;
use crate::format::{Manifest, SegmentEnd};
use crate::fs::segment::Segment;
use crate::index::ids::{id_key, IdWindow};
use crate::index::StreamIndex;
use crate::log::{CommitSignal, Snapshot};
use crate::options::{Durability, Options};
use crate::recover::Recovered;
use crate::write::fault::Faults;
use crate::write::flush::Flusher;
use crate::write::validate::Request;
use stage::{Accepted, BatchState};

/// The single writer of a store, driven by the leader of each group-commit batch.
#[derive(Debug)]
pub(crate) struct Writer {
    dir: PathBuf,
    options: Options,
    /// The log as the writer knows it: every segment (the last is the tail), the tail's end,
    /// the next position. Readers get a copy after each append.
    state: Snapshot,
    /// CRC of the tail's last frame, 0 if it has none.
    last_crc: u32,
    /// Offset of the tail's last frame (0 if it has none).
    last_frame_offset: usize,
    /// The last frame of each sealed segment, for index snapshots.
    sealed_ends: Vec<SegmentEnd>,
    /// Index snapshots: the one being written, and when to write the next.
    snapshots: snapshot::Snapshots,
    /// Every position below it is on stable storage; raised by the writer after its syncs and
    /// by the flush thread after its own.
    durable: Arc<AtomicU64>,
    /// Where the write being prepared starts: the tail's sequence number and offset, the
    /// first position it gives out, and the index in the batch of its first request.
    write_start: WriteStart,
    /// How many requests of the batch being committed have their final results (those of
    /// the writes already published).
    published: usize,
    /// The manifest as it is on disk; before its first write the writer makes it name the
    /// tail and no clean close.
    manifest: Option<Manifest>,
    /// What readers see, replaced after each append (before `index` is updated).
    committed: Arc<RwLock<Snapshot>>,
    index: Arc<RwLock<StreamIndex>>,
    /// Wakes subscribers after each batch.
    signal: Arc<CommitSignal>,
    ids: IdWindow,
    /// Encoding buffer, reused by every append.
    buf: Vec<u8>,
    /// Locations of the events of the batch being written, reused.
    locations: Vec<u64>,
    /// The appends of the batch being written that passed their checks, reused.
    accepted: Vec<Accepted>,
    /// Bytes were written to the tail since its last sync.
    unsynced: bool,
    /// Injected I/O failures (tests only).
    faults: Faults,
    poisoned: Option<String>,
    /// Streams being erased: appends to them fail until the erasure ends.
    erasing: HashSet<String>,
    /// Streams erased since opening and not appended to since, whose names index snapshots
    /// leave out.
    erased: HashSet<String>,
    flusher: Option<Flusher>,
    /// Threads writing the index side files of segments sealed since opening.
    indexers: Vec<JoinHandle<()>>,
    /// The thread writing the type and category indexes that sealed segments lacked at
    /// opening, and the flag that stops it.
    backfill: Option<(Arc<std::sync::atomic::AtomicBool>, JoinHandle<()>)>,
}

/// Where a write starts; see [`Writer::begin_write`].
#[derive(Debug, Clone, Copy, Default)]
struct WriteStart {
    segment_seq: u64,
    offset: usize,
    position: u64,
    request: usize,
}

impl Writer {
    /// A writer continuing the recovered log.
    pub fn new(dir: PathBuf, options: Options, recovered: Recovered) -> Result<Self> {
        // Recovery synced the tail: everything it found is durable.
        let durable = Arc::new(AtomicU64::new(recovered.next_position));
        let flusher = match options.durability {
            Durability::Fsync => None,
            Durability::Buffered => {
                let tail = recovered
                    .segments
                    .last()
                    .ok_or_else(|| Error::InvalidInput("store has no segment".into()))?;
                Some(Flusher::start(
                    options.flush_interval,
                    Arc::clone(tail),
                    Arc::clone(&durable),
                )?)
            }
        };
        let state = Snapshot {
            segments: Arc::new(recovered.segments),
            tail_end: recovered.tail_end,
            next_position: recovered.next_position,
        };
        let mut writer = Writer {
            dir,
            faults: Faults::new(&options),
            options,
            committed: Arc::new(RwLock::new(state.clone())),
            state,
            last_crc: recovered.last_frame.map_or(0, |(_, crc)| crc),
            last_frame_offset: recovered.last_frame.map_or(0, |(offset, _)| offset),
            sealed_ends: recovered.sealed_ends,
            snapshots: snapshot::Snapshots::default(),
            durable,
            write_start: WriteStart::default(),
            published: 0,
            manifest: recovered.manifest,
            index: Arc::new(RwLock::new(recovered.streams)),
            signal: Arc::new(CommitSignal::new(recovered.next_position)),
            ids: recovered.ids,
            buf: Vec::new(),
            locations: Vec::new(),
            accepted: Vec::new(),
            unsynced: false,
            poisoned: None,
            erasing: HashSet::new(),
            erased: HashSet::new(),
            flusher,
            indexers: Vec::new(),
            backfill: None,
        };
        writer.write_missing_postings();
        Ok(writer)
    }

    /// The committed log and the stream index, which readers share.
    pub fn shared(
        &self,
    ) -> (
        Arc<RwLock<Snapshot>>,
        Arc<RwLock<StreamIndex>>,
        Arc<CommitSignal>,
    ) {
        (
            Arc::clone(&self.committed),
            Arc::clone(&self.index),
            Arc::clone(&self.signal),
        )
    }

    /// Writes a batch of appends gathered by group commit: checks each in order (against the
    /// log and against the appends before it in the batch), encodes the ones that pass into
    /// one buffer, then one `write` and one `fdatasync` for all (two of each if the batch
    /// needs a new segment). `results` gets one result per request, in order. If a write or a
    /// sync fails, every append of that write fails and the writer is poisoned.
    pub fn commit(&mut self, batch: &[Request], results: &mut Vec<Result<AppendResult>>) {
        results.clear();
        if let Err(e) = self.check_writable() {
            results.extend(batch.iter().map(|_| Err(e.duplicate())));
            return;
        }
        self.published = 0;
        self.poll_snapshot();
        self.begin_write(0);
        let mut batch_state = BatchState::new(batch.len());
        for (i, request) in batch.iter().enumerate() {
            if !self.buf.is_empty() && !self.fits(request.frame_len) {
                // The rest of the batch goes to a new segment: what is staged is committed
                // first, so that nothing written before the roll depends on what follows it.
                if let Err(e) = self.finish_write(batch, results) {
                    results.resize_with(batch.len(), || Err(e.duplicate()));
                    return;
                }
                batch_state = BatchState::new(batch.len() - i);
                self.begin_write(i);
            }
            batch_state.more_follow = i + 1 < batch.len();
            let staged = self.stage(i, request, &mut batch_state);
            if let Some(cause) = self.poisoned.clone() {
                let e = staged.err().unwrap_or(Error::Poisoned { cause });
                self.discard_write(results, &e);
                results.resize_with(batch.len(), || Err(e.duplicate()));
                return;
            }
            results.push(staged);
        }
        if let Err(e) = self.finish_write(batch, results) {
            results.resize_with(batch.len(), || Err(e.duplicate()));
            return;
        }
        self.start_snapshot();
    }

    /// Starts preparing a write at the tail's end, from request `request` of the batch on.
    fn begin_write(&mut self, request: usize) {
        self.buf.clear();
        self.locations.clear();
        self.accepted.clear();
        self.write_start = WriteStart {
            segment_seq: self.tail().seq(),
            offset: self.state.tail_end,
            position: self.state.next_position,
            request,
        };
    }

    /// Whether a frame of `frame_len` bytes fits after what is staged in the tail.
    fn fits(&self, frame_len: usize) -> bool {
        self.state.tail_end + self.buf.len() + frame_len <= self.tail().capacity()
    }

    /// Writes and syncs what is staged, then publishes it: the committed end, the stream
    /// heads, the ids, the results of the appends it holds, and a wake-up for subscribers. On
    /// failure the write's bytes are discarded and its appends get the error.
    fn finish_write(
        &mut self,
        batch: &[Request],
        results: &mut [Result<AppendResult>],
    ) -> Result<()> {
        if let Err(e) = self.write_batch() {
            self.discard_write(results, &e);
            return Err(e);
        }
        *self.committed.write() = self.state.clone();
        let mut index = self.index.write();
        for acc in &self.accepted {
            let request = &batch[acc.request];
            let locations = &self.locations[acc.locations.clone()];
            index.append(
                &request.stream,
                acc.slot,
                acc.below,
                acc.first_version,
                locations,
            );
            for (ev, &location) in request.events.iter().zip(locations) {
                if let Some(id) = ev.id {
                    self.ids.insert(id_key(&request.stream, id), location);
                }
            }
            let count = locations.len() as u64;
            results[acc.request] = Ok(AppendResult {
                first_position: acc.first_position,
                last_position: acc.first_position + count - 1,
                first_version: acc.first_version,
                last_version: acc.first_version + count - 1,
                deduplicated: false,
            });
        }
        drop(index);
        self.signal.publish(self.state.next_position);
        self.published = results.len();
        Ok(())
    }

    /// After a failed write: zeroes what it may have put in the tail (so that a reopen does
    /// not find appends that were never acknowledged) and fails its appends with `e`, and the
    /// appends deduplicated against them. The zeroing is synced before the callers hear of the
    /// failure; if it fails too, the store is poisoned already and recovery decides from the
    /// bytes.
    fn discard_write(&mut self, results: &mut [Result<AppendResult>], e: &Error) {
        let start = self.write_start;
        let tail = self.tail();
        if tail.seq() == start.segment_seq {
            let _ = tail.zero_from(start.offset);
        }
        for acc in &self.accepted {
            if let Some(result) = results.get_mut(acc.request) {
                *result = Err(e.duplicate());
            }
        }
        for result in results.iter_mut().skip(start.request) {
            if matches!(result, Ok(r) if r.deduplicated && r.first_position >= start.position) {
                *result = Err(e.duplicate());
            }
        }
    }

    /// Writes what the buffer holds to the tail and makes everything written durable
    /// (or, under `Buffered`, tells the flush thread).
    fn write_batch(&mut self) -> Result<()> {
        self.write_buffer()?;
        if !std::mem::take(&mut self.unsynced) {
            return Ok(());
        }
        let next_position = self.state.next_position;
        match &self.flusher {
            Some(flusher) => {
                flusher.mark_dirty(next_position);
                Ok(())
            }
            None => {
                let tail = self.tail();
                self.sync_tail(&tail, next_position)
            }
        }
    }

    /// Records that every event below `position` is on stable storage.
    fn mark_durable(&self, position: u64) {
        self.durable.fetch_max(position, Ordering::AcqRel);
    }

    /// Writes the buffer at the tail's end, without syncing.
    fn write_buffer(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.record_manifest(None) {
            return Err(self.poison(e));
        }
        let tail = self.tail();
        if let Err(e) = self.faults.write(&tail, self.state.tail_end, &self.buf) {
            return Err(self.poison(e));
        }
        self.snapshots.grew(self.buf.len() as u64);
        self.state.tail_end += self.buf.len();
        self.buf.clear();
        self.unsynced = true;
        Ok(())
    }

    /// Number of remembered ids and the bytes they take.
    pub fn id_window_usage(&self) -> (usize, usize) {
        (self.ids.len(), self.ids.heap_bytes())
    }

    /// Puts everything written so far on stable storage.
    pub fn sync(&mut self) -> Result<()> {
        self.check_writable()?;
        let tail = self.tail();
        let covers = self.state.next_position;
        self.sync_tail(&tail, covers)
    }

    /// Syncs `tail`, through the flush thread if there is one (so that no sync runs after a
    /// failed one), else directly (where the tests' injected sync failures apply); on success every event below `covers` is durable, on failure the writer
    /// is poisoned.
    fn sync_tail(&mut self, tail: &Segment, covers: u64) -> Result<()> {
        let synced = match &self.flusher {
            Some(flusher) => flusher.sync(tail, covers),
            None => self.faults.sync(tail).map(|()| self.mark_durable(covers)),
        };
        synced.map_err(|e| self.poison(e))
    }

    fn tail(&self) -> Arc<Segment> {
        // `segments` is never empty: recovery creates the first segment.
        Arc::clone(&self.state.segments[self.state.segments.len() - 1])
    }

    fn check_writable(&mut self) -> Result<()> {
        if self.poisoned.is_none() {
            self.poisoned = self.flusher.as_ref().and_then(Flusher::failure);
        }
        match &self.poisoned {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses every later write after a panic inside [`Writer::commit`]. Returns how many
    /// requests of the batch have their final results: those of the writes it had published
    /// (durable and visible, so they keep their results).
    pub fn poison_after_panic(&mut self, cause: &str) -> usize {
        self.poisoned = Some(cause.to_string());
        self.published
    }

    /// Remembers `e` as the reason every later write fails, and returns it.
    fn poison(&mut self, e: Error) -> Error {
        self.poisoned = Some(e.to_string());
        e
    }
}
