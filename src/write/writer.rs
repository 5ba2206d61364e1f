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

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::format::{
    begin_frame, encode_record, finish_frame, location, record_len, Manifest, RecordView,
    FRAME_HEADER_LEN, MAX_FRAME_LEN, MAX_NAME_LEN, NO_PREV, SEGMENT_HEADER_LEN,
};
use crate::fs::manifest;
use crate::fs::segment::Segment;
use crate::index::ids::{id_key, IdWindow};
use crate::index::side_file::SegmentIndex;
use crate::index::{HashKeyed, Slot, StreamIndex};
use crate::log::CommitSignal;
use crate::log::Snapshot;
use crate::options::{Durability, Options};
use crate::recover::Recovered;
use crate::write::fault::Faults;
use crate::write::flush::Flusher;

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
    flusher: Option<Flusher>,
    /// Threads writing the index side files of segments sealed since opening.
    indexers: Vec<JoinHandle<()>>,
}

/// Where a write starts; see [`Writer::begin_write`].
#[derive(Debug, Clone, Copy, Default)]
struct WriteStart {
    segment_seq: u64,
    offset: usize,
    position: u64,
    request: usize,
}

/// One append waiting for group commit: validated, not yet checked against the log.
#[derive(Debug)]
pub(crate) struct Request {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EventData>,
    /// From [`validate`].
    pub frame_len: usize,
}

/// What a batch has written so far, for checking the appends after it.
#[derive(Debug, Default)]
struct BatchState<'b> {
    /// Streams appended to: slot, last version, last location.
    heads: HashMap<&'b str, (Slot, u64, u64)>,
    /// Free hash slots that new streams of the batch have taken.
    claimed: HashSet<u64>,
    /// Ids written: key -> (stream, id, position, version).
    ids: HashKeyed<(&'b str, u128, u64, u64)>,
    /// More appends follow the one being staged in this batch.
    more_follow: bool,
}

/// An append of the batch being written that passed its checks.
#[derive(Debug, Clone)]
struct Accepted {
    /// Index of the request in the batch.
    request: usize,
    first_position: u64,
    first_version: u64,
    slot: Slot,
    /// Its events' locations, in `Writer::locations`.
    locations: Range<usize>,
}

impl Writer {
    /// A writer continuing the recovered log.
    pub fn new(dir: PathBuf, options: Options, recovered: Recovered) -> Result<Self> {
        // Recovery synced the tail: everything it found is durable.
        let durable = Arc::new(AtomicU64::new(recovered.next_position));
        let flusher = match options.get_durability() {
            Durability::Fsync => None,
            Durability::Buffered => {
                let tail = recovered
                    .segments
                    .last()
                    .ok_or_else(|| Error::InvalidInput("store has no segment".into()))?;
                Some(Flusher::start(
                    options.get_flush_interval(),
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
        Ok(Writer {
            dir,
            faults: Faults::new(&options),
            options,
            committed: Arc::new(RwLock::new(state.clone())),
            state,
            last_crc: recovered.last_crc,
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
            flusher,
            indexers: Vec::new(),
        })
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
        self.begin_write(0);
        let mut batch_state = BatchState::default();
        for (i, request) in batch.iter().enumerate() {
            if !self.buf.is_empty() && !self.fits(request.frame_len) {
                // The rest of the batch goes to a new segment: what is staged is committed
                // first, so that nothing written before the roll depends on what follows it.
                if let Err(e) = self.finish_write(batch, results) {
                    results.resize_with(batch.len(), || Err(e.duplicate()));
                    return;
                }
                batch_state = BatchState::default();
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
        }
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
            index.append(&request.stream, acc.slot, acc.first_version, locations);
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

    /// Checks one request of a batch and, if it passes, encodes its frame into the buffer.
    /// The `Ok` value is a placeholder for an encoded append (replaced once the batch is
    /// durable) or the original positions of a deduplicated one.
    fn stage<'b>(
        &mut self,
        i: usize,
        request: &'b Request,
        batch: &mut BatchState<'b>,
    ) -> Result<AppendResult> {
        let stream = request.stream.as_str();
        let (slot, head) = match batch.heads.get(stream) {
            Some(&(slot, version, location)) => (slot, Some((version, location))),
            None => {
                let index = self.index.read();
                let (slot, entry) = index.find(stream, |l, s| self.state.is_stream_at(l, s))?;
                let head = entry.map(|e| (e.last_version, e.last_location));
                // A new stream whose free hash slot an earlier new stream of this batch took
                // goes to the collided map, as it would once that stream is in the index.
                match slot {
                    Slot::Hashed(hash) if head.is_none() && !batch.claimed.insert(hash) => {
                        (Slot::Collided, None)
                    }
                    _ => (slot, head),
                }
            }
        };
        let held = |id: u128| -> Result<Option<(u64, u64)>> {
            let key = id_key(stream, id);
            if let Some(&(s, held_id, position, version)) = batch.ids.get(&key) {
                if s == stream && held_id == id {
                    return Ok(Some((position, version)));
                }
            }
            let Some(location) = self.ids.get(key) else {
                return Ok(None);
            };
            let (view, _) = self.state.record_at(location)?;
            Ok((view.stream == stream && view.id == Some(id))
                .then_some((view.position, view.version)))
        };
        if let Some(original) = deduplicate(stream, &request.events, held)? {
            return Ok(original);
        }
        let actual = head.map(|(version, _)| version);
        if !request.expected.is_satisfied_by(actual) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_string(),
                expected: request.expected,
                actual,
            });
        }
        self.make_room(request.frame_len)?;
        let tail_seq = self.tail().seq();
        let events = &request.events;
        let count = events.len() as u64;
        let first_position = self.state.next_position;
        let first_version = actual.map_or(0, |v| v + 1);
        let now = now_micros();
        let first_location = self.locations.len();
        let start = begin_frame(&mut self.buf);
        let mut prev = head.map_or(NO_PREV, |(_, location)| location);
        for (i, ev) in (0u64..).zip(events) {
            let record_offset = self.state.tail_end + self.buf.len();
            let version = first_version + i;
            encode_record(
                &mut self.buf,
                &RecordView {
                    position: first_position + i,
                    version,
                    timestamp: ev.timestamp.unwrap_or(now),
                    prev,
                    id: ev.id,
                    stream,
                    event_type: &ev.event_type,
                    metadata: &ev.metadata,
                    payload: &ev.payload,
                },
            );
            prev = location(tail_seq, record_offset);
            self.locations.push(prev);
            // Later appends of the batch check their ids against these.
            if let (Some(id), true) = (ev.id, batch.more_follow) {
                batch.ids.insert(
                    id_key(stream, id),
                    (stream, id, first_position + i, version),
                );
            }
        }
        self.last_crc = finish_frame(
            &mut self.buf,
            start,
            first_position,
            self.durable.load(Ordering::Acquire),
            events.len() as u32,
            self.last_crc,
        );
        self.state.next_position += count;
        batch
            .heads
            .insert(stream, (slot, first_version + count - 1, prev));
        self.accepted.push(Accepted {
            request: i,
            first_position,
            first_version,
            slot,
            locations: first_location..self.locations.len(),
        });
        // Placeholder; the real result is set once the batch is durable.
        Ok(AppendResult {
            first_position,
            last_position: first_position,
            first_version,
            last_version: first_version,
            deduplicated: false,
        })
    }

    /// Writes what the buffer holds to the tail and makes everything written durable
    /// (or, under `Buffered`, tells the flush thread).
    fn write_batch(&mut self) -> Result<()> {
        self.write_buffer()?;
        if !std::mem::take(&mut self.unsynced) {
            return Ok(());
        }
        let next_position = self.state.next_position;
        let synced = match &self.flusher {
            Some(flusher) => {
                flusher.mark_dirty(next_position);
                Ok(())
            }
            None => {
                let tail = self.tail();
                self.faults
                    .sync(&tail)
                    .map(|()| self.mark_durable(next_position))
            }
        };
        synced.map_err(|e| self.poison(e))
    }

    /// Records that every event below `position` is on stable storage.
    fn mark_durable(&self, position: u64) {
        self.durable.fetch_max(position, Ordering::AcqRel);
    }

    /// Writes the manifest if it does not name the tail, or records a clean close (`closed`,
    /// see [`Manifest::closed`]) other than the one asked for.
    fn record_manifest(&mut self, closed: Option<(u64, u32)>) -> Result<()> {
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
    /// failed one); on success every event below `covers` is durable, on failure the writer
    /// is poisoned.
    fn sync_tail(&mut self, tail: &Segment, covers: u64) -> Result<()> {
        let synced = match &self.flusher {
            Some(flusher) => flusher.sync(tail, covers),
            None => tail.sync_data().map(|()| self.mark_durable(covers)),
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

    /// Makes sure a frame of `frame_len` bytes fits after what is staged in the tail: grows an
    /// empty tail, or (with nothing staged: [`Writer::commit`] writes what is staged first)
    /// syncs the tail, creates the next segment, records it in the manifest and leaves the
    /// sealed one's index side file to a background thread.
    fn make_room(&mut self, frame_len: usize) -> Result<()> {
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
    fn roll(&mut self, tail: &Arc<Segment>, needed: usize) -> Result<()> {
        let capacity = self.options.get_segment_size().max(needed as u64);
        let base = self.state.next_position;
        self.sync_tail(tail, base)?;
        let next = Segment::create(&self.dir, base, tail.seq() + 1, capacity)?;
        Arc::make_mut(&mut self.state.segments).push(Arc::new(next));
        self.record_manifest(None)?;
        self.state.tail_end = SEGMENT_HEADER_LEN;
        self.last_crc = 0;
        self.unsynced = false;
        self.write_index_file(Arc::clone(tail));
        Ok(())
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
            });
        if let Ok(thread) = spawned {
            self.indexers.push(thread);
        }
    }
}

impl Drop for Writer {
    /// A clean close: stops the flush thread, syncs the tail and records in the manifest where
    /// its data ends, so that the next open neither cuts nor looks past synced data.
    fn drop(&mut self) {
        for thread in self.indexers.drain(..) {
            let _ = thread.join();
        }
        if let Some(flusher) = &mut self.flusher {
            flusher.stop();
        }
        let tail = self.tail();
        let covers = self.state.next_position;
        if self.check_writable().is_ok() && self.sync_tail(&tail, covers).is_ok() {
            let closed = Some((self.state.tail_end as u64, self.last_crc));
            let _ = self.record_manifest(closed);
        }
    }
}

/// If every event of the append carries an id that `stream` holds already (`held` gives its
/// position and version), in the same order, the original positions and versions; if only
/// some do, [`Error::DuplicateEvent`]; if none does, `None`.
fn deduplicate(
    stream: &str,
    events: &[EventData],
    held: impl Fn(u128) -> Result<Option<(u64, u64)>>,
) -> Result<Option<AppendResult>> {
    let mut count = 0;
    let mut first: Option<(u128, u64, u64)> = None;
    let mut last: Option<(u64, u64)> = None;
    let mut in_order = true;
    for id in events.iter().filter_map(|ev| ev.id) {
        let Some((position, version)) = held(id)? else {
            continue;
        };
        count += 1;
        first.get_or_insert((id, position, version));
        if let Some((_, last_version)) = last {
            in_order &= version == last_version + 1;
        }
        last = Some((position, version));
    }
    match (first, last) {
        (Some((_, first_position, first_version)), Some((last_position, last_version)))
            if count == events.len() && in_order =>
        {
            Ok(Some(AppendResult {
                first_position,
                last_position,
                first_version,
                last_version,
                deduplicated: true,
            }))
        }
        (Some((id, _, _)), _) => Err(Error::DuplicateEvent {
            stream: stream.to_string(),
            id,
        }),
        _ => Ok(None),
    }
}

/// Checks an append against the rules of the API and returns the length of its frame.
pub(crate) fn validate(stream: &str, events: &[EventData], max_event_size: usize) -> Result<usize> {
    check_name("stream name", stream)?;
    if events.is_empty() {
        return Err(Error::InvalidInput(format!(
            "append to stream {stream:?} has no events"
        )));
    }
    let mut ids: Vec<u128> = events.iter().filter_map(|ev| ev.id).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(Error::InvalidInput(format!(
            "event id {:#034x} appears twice in one append to {stream:?}",
            pair[0]
        )));
    }
    let mut frame_len = FRAME_HEADER_LEN;
    for (i, ev) in events.iter().enumerate() {
        check_name("event type", &ev.event_type)?;
        let size = ev.payload.len() + ev.metadata.len();
        if size > max_event_size {
            return Err(Error::InvalidInput(format!(
                "event {i} of the append to {stream:?} has {size} bytes of payload and metadata, \
                 more than max_event_size ({max_event_size})"
            )));
        }
        frame_len += record_len(
            stream.len(),
            ev.event_type.len(),
            ev.metadata.len(),
            ev.payload.len(),
            ev.id.is_some(),
        );
        if frame_len > MAX_FRAME_LEN {
            return Err(Error::InvalidInput(format!(
                "append to {stream:?} needs more than {MAX_FRAME_LEN} bytes; split it"
            )));
        }
    }
    Ok(frame_len)
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "{what} {name:?} must have 1 to {MAX_NAME_LEN} bytes, it has {}",
            name.len()
        )));
    }
    Ok(())
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
