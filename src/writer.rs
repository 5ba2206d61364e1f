//! The write path, top to bottom: validate an append, check the expected version, make room
//! in the tail segment (grow it or roll to a new one), encode one frame into a reused buffer,
//! one `write`, one `fdatasync`, then advance the stream heads and the committed end.
//!
//! A failed write or sync poisons the writer: the state of the tail on disk is unknown, so
//! every later append fails with [`Error::Poisoned`] until the store is reopened, and recovery
//! decides from the bytes what survived. A failed `fdatasync` is never retried.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::flush::Flusher;
use crate::format::{
    begin_frame, encode_record, finish_frame, location, record_len, RecordView, FRAME_HEADER_LEN,
    MAX_FRAME_LEN, MAX_NAME_LEN, NO_PREV, SEGMENT_HEADER_LEN,
};
use crate::index::{StreamHead, StreamIndex};
use crate::options::{Durability, Options};
use crate::read::Snapshot;
use crate::recovery::Recovered;
use crate::segment::Segment;

/// The single writer of a store (callers take turns through a mutex).
#[derive(Debug)]
pub(crate) struct Writer {
    dir: PathBuf,
    options: Options,
    /// Every segment; the last one is the tail. Shared with read snapshots, copied on roll.
    segments: Arc<Vec<Arc<Segment>>>,
    /// Offset in the tail after its last frame.
    tail_end: usize,
    next_position: u64,
    /// CRC of the tail's last frame, 0 if it has none.
    last_crc: u32,
    write_seq: u64,
    streams: StreamIndex,
    /// Encoding buffer, reused by every append.
    buf: Vec<u8>,
    poisoned: Option<String>,
    flusher: Option<Flusher>,
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
        Ok(Writer {
            dir,
            options,
            segments: Arc::new(recovered.segments),
            tail_end: recovered.tail_end,
            next_position: recovered.next_position,
            last_crc: recovered.last_crc,
            write_seq: recovered.write_seq,
            streams: recovered.streams,
            buf: Vec::new(),
            poisoned: None,
            flusher,
        })
    }

    /// What readers may see now: everything written so far.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            segments: Arc::clone(&self.segments),
            tail_end: self.tail_end,
            next_position: self.next_position,
        }
    }

    /// The last version of `stream`, `None` if it has no events.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        self.streams.head(stream).map(|h| h.last_version)
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
        let head = self.streams.head(stream);
        let actual = head.map(|h| h.last_version);
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
        let first_position = self.next_position;
        let first_version = actual.map_or(0, |v| v + 1);
        let now = now_micros();

        self.buf.clear();
        let start = begin_frame(&mut self.buf);
        let mut prev = head.map_or(NO_PREV, |h| h.last_location);
        for (i, ev) in (0u64..).zip(events) {
            let record_offset = self.tail_end + self.buf.len();
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

        let written = tail.write_at(self.tail_end, &self.buf).and_then(|()| {
            match (&self.flusher, self.options.get_durability()) {
                (Some(flusher), Durability::Buffered) => {
                    flusher.mark_dirty();
                    Ok(())
                }
                _ => tail.sync_data(),
            }
        });
        if let Err(e) = written {
            return Err(self.poison(e));
        }

        self.write_seq = write_seq;
        self.tail_end += self.buf.len();
        self.next_position += count;
        self.last_crc = crc;
        let last_version = first_version + count - 1;
        self.streams.set_head(
            stream,
            StreamHead {
                last_version,
                last_location: prev,
            },
        );
        Ok(AppendResult {
            first_position,
            last_position: first_position + count - 1,
            first_version,
            last_version,
            deduplicated: false,
        })
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
        Arc::clone(&self.segments[self.segments.len() - 1])
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
    /// or syncs the tail and rolls to a new segment.
    fn make_room(&mut self, frame_len: usize) -> Result<()> {
        let tail = self.tail();
        if self.tail_end + frame_len <= tail.capacity() {
            return Ok(());
        }
        let needed = SEGMENT_HEADER_LEN + frame_len;
        let result = if self.tail_end == SEGMENT_HEADER_LEN {
            tail.grow(needed).map(|grown| {
                let segments = Arc::make_mut(&mut self.segments);
                let last = segments.len() - 1;
                segments[last] = Arc::new(grown);
            })
        } else {
            let capacity = self.options.get_segment_size().max(needed as u64);
            tail.sync_data()
                .and_then(|()| {
                    Segment::create(&self.dir, self.next_position, tail.seq() + 1, capacity)
                })
                .map(|segment| {
                    Arc::make_mut(&mut self.segments).push(Arc::new(segment));
                    self.tail_end = SEGMENT_HEADER_LEN;
                    self.last_crc = 0;
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
}

/// Checks an append against the rules of the API and returns the length of its frame.
pub(crate) fn validate(stream: &str, events: &[EventData], max_event_size: usize) -> Result<usize> {
    check_name("stream name", stream)?;
    if events.is_empty() {
        return Err(Error::InvalidInput(format!(
            "append to stream {stream:?} has no events"
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
