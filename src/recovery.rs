//! Opening a store's log: check every segment, rebuild the stream heads, and cut a torn tail.
//!
//! Sealed segments must be complete and intact: any fault there is [`Error::Corrupt`]. In the
//! tail segment, the first frame that is incomplete, fails its checksum, or does not continue
//! the chain (position, previous CRC, write sequence) marks the end of what was written: the
//! rest of the file is zeroed and the cut is described in the [`OpenReport`].
//!
//! One exception keeps invariant 5 ("opening never loses an acknowledged event"): if a damaged
//! frame is followed by an intact frame that chains to it and comes from a *later* write, the
//! damaged frame was once complete, so this is damage rather than a torn write, and opening
//! fails with [`Error::Corrupt`] instead of dropping acknowledged events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dir::list_segments;
use crate::error::{Error, Result};
use crate::format::{
    location, peek_frame_header, read_frame, FrameFault, NO_PREV, SEGMENT_HEADER_LEN,
};
use crate::index::{StreamHead, StreamIndex};
use crate::segment::Segment;

/// What opening a store found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Number of segment files.
    pub segments: usize,
    /// Number of events in the store.
    pub events: u64,
    /// Number of streams in the store.
    pub streams: usize,
    /// The torn tail that was cut, if there was one.
    pub cut: Option<TailCut>,
    /// How long opening took.
    pub duration: Duration,
}

/// A torn tail cut off while opening: bytes of a write that never completed, so never
/// acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    /// The tail segment.
    pub file: PathBuf,
    /// Where the cut was made: everything from here on was zeroed.
    pub offset: u64,
    /// What was found at `offset`.
    pub reason: String,
}

/// The state of the log after recovery, ready for the writer and the readers.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub segments: Vec<Arc<Segment>>,
    /// Offset in the tail segment after its last frame.
    pub tail_end: usize,
    pub next_position: u64,
    /// CRC of the tail segment's last frame (0 if it has none).
    pub last_crc: u32,
    /// Write sequence number of the last frame in the log (0 if there is none).
    pub write_seq: u64,
    pub streams: StreamIndex,
    pub report: OpenReport,
}

/// Where a scan of one segment stopped.
struct Stop {
    offset: usize,
    fault: FrameFault,
    last_crc: u32,
}

/// Opens and checks every segment of `dir`, creating the first one in an empty store.
pub(crate) fn recover(dir: &Path, segment_size: u64) -> Result<Recovered> {
    let started = Instant::now();
    let mut segments = Vec::new();
    for (i, (base, path)) in list_segments(dir)?.into_iter().enumerate() {
        let segment = Segment::open(&path, base)?;
        if segment.seq() != i as u64 {
            return Err(Error::corrupt(
                &path,
                24,
                format!(
                    "segment sequence number {} where {i} was expected: a segment is missing",
                    segment.seq()
                ),
            ));
        }
        segments.push(segment);
    }
    if segments.is_empty() {
        segments.push(Segment::create(dir, 0, 0, segment_size)?);
    }
    if segments[0].base_position() != 0 {
        return Err(Error::corrupt(
            segments[0].path(),
            16,
            "the first segment does not start at position 0: segments are missing",
        ));
    }

    let mut streams = StreamIndex::default();
    let mut next_position = 0;
    let mut write_seq = 0;
    let bases: Vec<u64> = segments.iter().map(Segment::base_position).collect();
    let tail = segments
        .pop()
        .ok_or_else(|| Error::InvalidInput("no segment".into()))?;
    let mut opened = Vec::with_capacity(bases.len());
    for (segment, next_base) in segments.into_iter().zip(&bases[1..]) {
        let stop = scan(&segment, &mut next_position, &mut write_seq, &mut streams)?;
        check_sealed_end(&segment, &stop, next_position, *next_base)?;
        opened.push(Arc::new(segment));
    }

    let stop = scan(&tail, &mut next_position, &mut write_seq, &mut streams)?;
    let mut cut = None;
    let tail = match stop.fault {
        FrameFault::End => tail,
        fault => {
            if let Some(later) = later_write_follows(&tail, stop.offset, write_seq) {
                return Err(Error::corrupt(
                    tail.path(),
                    stop.offset as u64,
                    format!(
                        "{}; an intact frame of a later write follows at offset {later}, \
                         so acknowledged data was damaged (not a torn write)",
                        fault.describe()
                    ),
                ));
            }
            cut = Some(TailCut {
                file: tail.path().to_path_buf(),
                offset: stop.offset as u64,
                reason: fault.describe(),
            });
            tail.cut(stop.offset)?
        }
    };
    opened.push(Arc::new(tail));
    let report = OpenReport {
        segments: opened.len(),
        events: next_position,
        streams: streams.len(),
        cut,
        duration: started.elapsed(),
    };
    Ok(Recovered {
        segments: opened,
        tail_end: stop.offset,
        next_position,
        last_crc: stop.last_crc,
        write_seq,
        streams,
        report,
    })
}

/// Scans the frames of `segment` from its header on, checking each against the chain and
/// recording every event in `streams`, until the first frame that cannot be read.
fn scan(
    segment: &Segment,
    next_position: &mut u64,
    write_seq: &mut u64,
    streams: &mut StreamIndex,
) -> Result<Stop> {
    let bytes = segment.bytes();
    let mut offset = SEGMENT_HEADER_LEN;
    let mut last_crc = 0;
    loop {
        let frame = match read_frame(&bytes[offset..]) {
            Ok(frame) => frame,
            Err(fault) => {
                return Ok(Stop {
                    offset,
                    fault,
                    last_crc,
                })
            }
        };
        let h = frame.header;
        let chain_break = if h.first_position != *next_position {
            Some(format!(
                "frame starts at position {}, {} expected",
                h.first_position, *next_position
            ))
        } else if h.prev_crc != last_crc {
            Some("frame does not chain to the previous frame's checksum".to_string())
        } else if h.write_seq < *write_seq {
            Some(format!(
                "frame of write {} after write {}",
                h.write_seq, *write_seq
            ))
        } else {
            None
        };
        if let Some(reason) = chain_break {
            return Ok(Stop {
                offset,
                fault: FrameFault::Invalid(format!("stale frame: {reason}")),
                last_crc,
            });
        }
        let mut records = frame.records();
        loop {
            let record_offset = offset + records.offset();
            let view = match records.next() {
                None => break,
                Some(Ok(view)) => view,
                Some(Err(reason)) => {
                    return Err(Error::corrupt(segment.path(), record_offset as u64, reason))
                }
            };
            let head = streams.head(view.stream);
            let version = head.map_or(0, |h| h.last_version + 1);
            let prev = head.map_or(NO_PREV, |h| h.last_location);
            if view.version != version || view.prev != prev {
                return Err(Error::corrupt(
                    segment.path(),
                    record_offset as u64,
                    format!(
                        "event {} of stream {:?} has version {} and back pointer {:#x}, \
                         expected version {version} and back pointer {prev:#x}",
                        view.position, view.stream, view.version, view.prev
                    ),
                ));
            }
            streams.set_head(
                view.stream,
                StreamHead {
                    last_version: version,
                    last_location: location(segment.seq(), record_offset),
                },
            );
        }
        *next_position = frame.end_position();
        *write_seq = h.write_seq;
        last_crc = h.crc;
        offset += frame.bytes.len();
    }
}

/// A sealed segment must end cleanly exactly where the next segment begins.
fn check_sealed_end(segment: &Segment, stop: &Stop, end: u64, next_base: u64) -> Result<()> {
    if stop.fault != FrameFault::End {
        return Err(Error::corrupt(
            segment.path(),
            stop.offset as u64,
            format!("sealed segment: {}", stop.fault.describe()),
        ));
    }
    if end != next_base {
        return Err(Error::corrupt(
            segment.path(),
            stop.offset as u64,
            format!(
                "sealed segment ends at position {end}, the next segment starts at {next_base}"
            ),
        ));
    }
    Ok(())
}

/// If the damaged frame at `offset` has a plausible length and the frame after it is intact,
/// chains to it and was written by a later write than the last intact frame's, the offset of
/// that later frame.
fn later_write_follows(segment: &Segment, offset: usize, last_write_seq: u64) -> Option<usize> {
    let bytes = segment.bytes();
    let damaged = peek_frame_header(&bytes[offset..])?;
    let next = offset + damaged.len as usize;
    let frame = read_frame(bytes.get(next..)?).ok()?;
    (frame.header.prev_crc == damaged.crc && frame.header.write_seq >= last_write_seq + 2)
        .then_some(next)
}
