//! The write path, top to bottom: validate an append, check the expected version, make room
//! in the tail segment (grow it or roll to a new one), encode one frame into a reused buffer,
//! one `write`, one `fdatasync`, then advance the stream heads and the committed end.
//!
//! A failed write or sync poisons the writer: the state of the tail on disk is unknown, so
//! every later append fails with [`Error::Poisoned`] until the store is reopened, and recovery
//! decides from the bytes what survived. A failed `fdatasync` is never retried.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::dedup::{id_key, IdWindow};
use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::flush::Flusher;
use crate::format::{
    begin_frame, encode_record, finish_frame, location, record_len, RecordView, FRAME_HEADER_LEN,
    MAX_FRAME_LEN, MAX_NAME_LEN, NO_PREV, SEGMENT_HEADER_LEN,
};
use crate::index::StreamIndex;
use crate::options::{Durability, Options};
use crate::read::Snapshot;
use crate::recovery::Recovered;
use crate::seg_index::SegmentIndex;
use crate::segment::Segment;

/// The single writer of a store (callers take turns through a mutex).
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
    ids: IdWindow,
    /// Encoding buffer, reused by every append.
    buf: Vec<u8>,
    /// Locations of the events of the append being written, reused.
    locations: Vec<u64>,
    poisoned: Option<String>,
    flusher: Option<Flusher>,
    /// Threads writing the index side files of segments sealed since opening.
    indexers: Vec<JoinHandle<()>>,
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
            options,
            committed: Arc::new(RwLock::new(state.clone())),
            state,
            last_crc: recovered.last_crc,
            write_seq: recovered.write_seq,
            index: Arc::new(RwLock::new(recovered.streams)),
            ids: recovered.ids,
            buf: Vec::new(),
            locations: Vec::new(),
            poisoned: None,
            flusher,
            indexers: Vec::new(),
        })
    }

    /// The committed log and the stream index, which readers share.
    pub fn shared(&self) -> (Arc<RwLock<Snapshot>>, Arc<RwLock<StreamIndex>>) {
        (Arc::clone(&self.committed), Arc::clone(&self.index))
    }

    /// Appends `events` to `stream` as one frame; `frame_len` comes from [`validate`].
    pub fn append(
        &mut self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[EventData],
        frame_len: usize,
    ) -> Result<AppendResult> {
        self.check_writable()?;
        let (slot, head) = {
            let index = self.index.read();
            let (slot, entry) = index.find(stream, |loc, s| self.state.is_stream_at(loc, s))?;
            (slot, entry.map(|e| (e.last_version, e.last_location)))
        };
        if let Some(original) = self.deduplicate(stream, events)? {
            return Ok(original);
        }
        let actual = head.map(|(version, _)| version);
        if !expected.is_satisfied_by(actual) {
            return Err(Error::WrongExpectedVersion {
                stream: stream.to_string(),
                expected,
                actual,
            });
        }
        self.make_room(frame_len)?;
        let tail = self.tail();
        let count = events.len() as u64;
        let first_position = self.state.next_position;
        let first_version = actual.map_or(0, |v| v + 1);
        let now = now_micros();

        self.buf.clear();
        self.locations.clear();
        let start = begin_frame(&mut self.buf);
        let mut prev = head.map_or(NO_PREV, |(_, location)| location);
        for (i, ev) in (0u64..).zip(events) {
            let record_offset = self.state.tail_end + self.buf.len();
            encode_record(
                &mut self.buf,
                &RecordView {
                    position: first_position + i,
                    version: first_version + i,
                    timestamp: ev.timestamp.unwrap_or(now),
                    prev,
                    id: ev.id,
                    stream,
                    event_type: &ev.event_type,
                    metadata: &ev.metadata,
                    payload: &ev.payload,
                },
            );
            prev = location(tail.seq(), record_offset);
            self.locations.push(prev);
        }
        let write_seq = self.write_seq + 1;
        let crc = finish_frame(
            &mut self.buf,
            start,
            first_position,
            write_seq,
            events.len() as u32,
            self.last_crc,
        );

        let written = tail
            .write_at(self.state.tail_end, &self.buf)
            .and_then(|()| match &self.flusher {
                Some(flusher) => {
                    flusher.mark_dirty();
                    Ok(())
                }
                None => tail.sync_data(),
            });
        if let Err(e) = written {
            return Err(self.poison(e));
        }

        self.write_seq = write_seq;
        self.last_crc = crc;
        self.state.tail_end += self.buf.len();
        self.state.next_position += count;
        *self.committed.write() = self.state.clone();
        self.index
            .write()
            .append(stream, slot, first_version, &self.locations);
        for (ev, &location) in events.iter().zip(&self.locations) {
            if let Some(id) = ev.id {
                self.ids.insert(id_key(stream, id), location);
            }
        }
        Ok(AppendResult {
            first_position,
            last_position: first_position + count - 1,
            first_version,
            last_version: first_version + count - 1,
            deduplicated: false,
        })
    }

    /// If every event of the append carries an id that `stream` holds already, in the same
    /// order, the original append's positions and versions; if only some do,
    /// [`Error::DuplicateEvent`]; if none does, `None`.
    fn deduplicate(&self, stream: &str, events: &[EventData]) -> Result<Option<AppendResult>> {
        let mut held = 0;
        let mut first_held: Option<(u128, u64, u64)> = None;
        let mut last_held: Option<(u64, u64)> = None;
        let mut in_order = true;
        for id in events.iter().filter_map(|ev| ev.id) {
            let Some(location) = self.ids.get(id_key(stream, id)) else {
                continue;
            };
            let (view, _) = self.state.record_at(location)?;
            if view.stream != stream || view.id != Some(id) {
                continue; // another (stream, id) whose key collides
            }
            held += 1;
            first_held.get_or_insert((id, view.position, view.version));
            if let Some((_, version)) = last_held {
                in_order &= view.version == version + 1;
            }
            last_held = Some((view.position, view.version));
        }
        match (first_held, last_held) {
            (Some((_, first_position, first_version)), Some((last_position, last_version)))
                if held == events.len() && in_order =>
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
        let end = self.state.tail_end;
        if end + frame_len <= tail.capacity() {
            return Ok(());
        }
        let needed = SEGMENT_HEADER_LEN + frame_len;
        let result = if end == SEGMENT_HEADER_LEN {
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
