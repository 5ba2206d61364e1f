//! The write path, top to bottom: validate an append; group commit (see [`crate::commit`])
//! hands the writer a batch of appends; for each in order, check idempotency and the expected
//! version (against the log and the appends before it in the batch), make room in the tail
//! segment (grow it or roll to a new one) and encode one frame into a reused buffer; then one
//! `write` and one `fdatasync` for the whole batch, and only then publish the new committed
//! end and the stream heads.
//!
//! A failed write or sync poisons the writer: the state of the tail on disk is unknown, so
//! every later append fails with [`Error::Poisoned`] until the store is reopened, and recovery
//! decides from the bytes what survived. A failed `fdatasync` is never retried.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dedup::{id_key, IdWindow};
use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::fault::{Faults, WriteFault};
use crate::flush::Flusher;
use crate::format::{
    begin_frame, encode_record, finish_frame, location, record_len, RecordView, FRAME_HEADER_LEN,
    MAX_FRAME_LEN, MAX_NAME_LEN, NO_PREV, SEGMENT_HEADER_LEN,
};
use crate::index::{HashKeyed, Slot, StreamIndex};
use crate::options::{Durability, Options};
use crate::read::Snapshot;
use crate::recovery::Recovered;
use crate::seg_index::SegmentIndex;
use crate::segment::Segment;
use crate::subscription::CommitSignal;

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
    write_seq: u64,
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
        let flusher = match options.get_durability() {
            Durability::Fsync => None,
            Durability::Buffered => {
                let tail = recovered
                    .segments
                    .last()
                    .ok_or_else(|| Error::InvalidInput("store has no segment".into()))?;
                Some(Flusher::start(
                    options.get_flush_interval(),
                    tail.file_handle()?,
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
            faults: Faults::new(options.fault_plan),
            options,
            committed: Arc::new(RwLock::new(state.clone())),
            state,
            last_crc: recovered.last_crc,
            write_seq: recovered.write_seq,
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
    /// one buffer, then one `write` and one `fdatasync` for all. `results` gets one result per
    /// request, in order. If the write or the sync fails, every append of the batch that
    /// passed its checks fails and the writer is poisoned.
    pub fn commit(&mut self, batch: &[Request], results: &mut Vec<Result<AppendResult>>) {
        results.clear();
        if let Err(e) = self.check_writable() {
            results.extend(batch.iter().map(|_| Err(e.duplicate())));
            return;
        }
        self.buf.clear();
        self.locations.clear();
        self.accepted.clear();
        let mut batch_state = BatchState::default();
        let write_seq = self.write_seq + 1;
        let start = (self.tail().seq(), self.state.tail_end);
        let mut failure = None;
        for (i, request) in batch.iter().enumerate() {
            batch_state.more_follow = i + 1 < batch.len();
            let staged = self.stage(i, request, write_seq, &mut batch_state);
            if let Some(cause) = self.poisoned.clone() {
                failure = Some(staged.err().unwrap_or(Error::Poisoned { cause }));
                break;
            }
            results.push(staged);
        }
        let written = match failure {
            Some(e) => Err(e),
            None => self.write_batch(),
        };
        if let Err(e) = written {
            self.discard_from(start);
            // Nothing of this batch was acknowledged: fail every append that passed its checks
            // (or was not reached), keep the check failures.
            results.resize_with(batch.len(), || Err(e.duplicate()));
            for acc in &self.accepted {
                results[acc.request] = Err(e.duplicate());
            }
            return;
        }
        self.write_seq = write_seq;
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
    }

    /// Checks one request of a batch and, if it passes, encodes its frame into the buffer.
    /// The `Ok` value is a placeholder for an encoded append (replaced once the batch is
    /// durable) or the original positions of a deduplicated one.
    fn stage<'b>(
        &mut self,
        i: usize,
        request: &'b Request,
        write_seq: u64,
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
            write_seq,
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
        let synced = match &self.flusher {
            Some(flusher) => {
                flusher.mark_dirty();
                Ok(())
            }
            None => {
                let tail = self.tail();
                self.faults
                    .before_sync()
                    .map_err(|e| Error::io("fdatasync", tail.path(), e))
                    .and_then(|()| tail.sync_data())
            }
        };
        synced.map_err(|e| self.poison(e))
    }

    /// After a failed batch: zeroes what the batch may have put in the tail from `start` (the
    /// tail's sequence number and end when the batch began), so that a reopen does not find
    /// appends that were never acknowledged. Best effort: the store is poisoned already, and
    /// recovery copes with whatever is left.
    fn discard_from(&mut self, (seq, offset): (u64, usize)) {
        let tail = self.tail();
        if tail.seq() == seq {
            let _ = tail.zero_from(offset);
        }
    }

    /// Writes the buffer at the tail's end, without syncing.
    fn write_buffer(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let tail = self.tail();
        let written = match self.faults.before_write() {
            None => tail.write_at(self.state.tail_end, &self.buf),
            Some(WriteFault::Fail(e)) => Err(Error::io("write", tail.path(), e)),
            Some(WriteFault::Short(e)) => tail
                .write_at(self.state.tail_end, &self.buf[..self.buf.len() / 2])
                .and(Err(Error::io("write", tail.path(), e))),
        };
        if let Err(e) = written {
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
        if let Err(e) = self.tail().sync_data() {
            return Err(self.poison(e));
        }
        Ok(())
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

    /// Refuses every later write after a panic inside [`Writer::commit`].
    pub fn poison_after_panic(&mut self, cause: &str) {
        self.poisoned = Some(cause.to_string());
    }

    /// Remembers `e` as the reason every later write fails, and returns it.
    fn poison(&mut self, e: Error) -> Error {
        self.poisoned = Some(e.to_string());
        e
    }

    /// Makes sure a frame of `frame_len` bytes fits after the tail's end: grows an empty tail,
    /// or syncs the tail and rolls to a new segment, leaving the sealed one's index side file
    /// to a background thread.
    fn make_room(&mut self, frame_len: usize) -> Result<()> {
        let tail = self.tail();
        if self.state.tail_end + self.buf.len() + frame_len <= tail.capacity() {
            return Ok(());
        }
        // The frames of this batch so far go into the current tail first.
        self.write_buffer()?;
        let needed = SEGMENT_HEADER_LEN + frame_len;
        let result = if self.state.tail_end == SEGMENT_HEADER_LEN {
            tail.grow(needed).map(|grown| {
                let segments = Arc::make_mut(&mut self.state.segments);
                let last = segments.len() - 1;
                segments[last] = Arc::new(grown);
            })
        } else {
            let capacity = self.options.get_segment_size().max(needed as u64);
            let base = self.state.next_position;
            tail.sync_data()
                .and_then(|()| Segment::create(&self.dir, base, tail.seq() + 1, capacity))
                .map(|segment| {
                    Arc::make_mut(&mut self.state.segments).push(Arc::new(segment));
                    self.state.tail_end = SEGMENT_HEADER_LEN;
                    self.last_crc = 0;
                    self.unsynced = false;
                    self.write_index_file(tail);
                })
        };
        if let Err(e) = result {
            return Err(self.poison(e));
        }
        if let Some(flusher) = &self.flusher {
            flusher.set_file(self.tail().file_handle()?);
        }
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
    fn drop(&mut self) {
        for thread in self.indexers.drain(..) {
            let _ = thread.join();
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
