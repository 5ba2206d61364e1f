//! Writing a sealed segment anew without some of its events (the layout is in
//! [`crate::format::rewritten`]): kept records are copied byte for byte, each run of records
//! that were next to each other becomes one frame (the chain of frame checksums is
//! recomputed), and the run table maps their original offsets to the new ones. The new file
//! replaces the old one atomically (temporary file, sync, rename, directory sync): a crash
//! leaves one or the other.

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::{
    begin_frame, finish_frame, read_frame, FrameFault, RecordView, Run, SegmentEnd, Trailer,
    SEGMENT_HEADER_LEN,
};
use crate::fs::dir::{segment_file_name, segment_tmp_name};
use crate::fs::install;
use crate::fs::segment::Segment;

/// What rewriting one segment did.
#[derive(Debug)]
pub(crate) struct Rewrite {
    /// The new segment, open and mapped.
    pub segment: Segment,
    /// Events it removed.
    pub removed: u64,
    /// File size before and after.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// The frame being built: a run of kept records.
struct OpenRun {
    start: usize,
    first_position: u64,
    durable: u64,
    count: u32,
}

/// The new file as it is built.
struct Builder {
    out: Vec<u8>,
    runs: Vec<Run>,
    open: Option<OpenRun>,
    last_crc: u32,
}

impl Builder {
    /// Adds a kept record (`bytes`, first written at `original`) of the frame whose durable
    /// position is `durable`, continuing the open run if it was next to its last record.
    fn keep(&mut self, view: &RecordView<'_>, bytes: &[u8], original: usize, durable: u64) {
        let continues = self.runs.last().is_some_and(|r| {
            self.open.is_some() && r.original as usize + r.len as usize == original
        });
        if !continues {
            self.close();
            let start = begin_frame(&mut self.out);
            self.runs.push(Run {
                original: original as u32,
                new: self.out.len() as u32,
                len: 0,
            });
            self.open = Some(OpenRun {
                start,
                first_position: view.position,
                durable,
                count: 0,
            });
        }
        self.out.extend_from_slice(bytes);
        if let (Some(run), Some(open)) = (self.runs.last_mut(), self.open.as_mut()) {
            run.len += bytes.len() as u32;
            open.count += 1;
        }
    }

    /// Ends the open run's frame, chained to the one before.
    fn close(&mut self) {
        if let Some(o) = self.open.take() {
            self.last_crc = finish_frame(
                &mut self.out,
                o.start,
                o.first_position,
                o.durable,
                o.count,
                self.last_crc,
            );
        }
    }
}

/// Writes the sealed `segment` anew without the events `remove` picks and puts the new file
/// in its place; `None` (and nothing written) if it picks none. Every frame and record is
/// checked on the way: damage is [`Error::Corrupt`], never copied.
pub(crate) fn rewrite_segment(
    dir: &Path,
    segment: &Segment,
    mut remove: impl FnMut(&RecordView<'_>) -> bool,
) -> Result<Option<Rewrite>> {
    let bytes = segment.bytes();
    let corrupt = |at: usize, reason: String| Error::corrupt(segment.path(), at as u64, reason);
    let mut b = Builder {
        out: Vec::with_capacity(bytes.len()),
        runs: Vec::new(),
        open: None,
        last_crc: 0,
    };
    b.out
        .extend_from_slice(&segment.header().encode_rewritten());
    let mut removed = 0;
    let mut offset = SEGMENT_HEADER_LEN;
    let mut end = SegmentEnd {
        end_position: segment.base_position(),
        data_end: SEGMENT_HEADER_LEN as u32,
        ..SegmentEnd::default()
    };
    loop {
        let frame = match read_frame(bytes.get(offset..).unwrap_or_default()) {
            Ok(frame) => frame,
            Err(FrameFault::End) => break,
            Err(fault) => return Err(corrupt(offset, format!("sealed segment: {fault}"))),
        };
        let mut records = frame.records();
        loop {
            let start = offset + records.offset();
            let view = match records.next() {
                None => break,
                Some(Err(reason)) => return Err(corrupt(start, reason.to_string())),
                Some(Ok(view)) => view,
            };
            if remove(&view) {
                removed += 1;
                b.close();
                continue;
            }
            let record = &bytes[start..offset + records.offset()];
            let original = segment.original_offset(start)?;
            b.keep(&view, record, original, frame.header.durable);
        }
        b.close();
        end = SegmentEnd {
            end_position: frame.end_position(),
            last_frame_offset: offset as u32,
            last_frame_crc: frame.header.crc,
            data_end: (offset + frame.bytes.len()) as u32,
        };
        offset += frame.bytes.len();
    }
    if removed == 0 {
        return Ok(None);
    }
    let trailer = Trailer {
        runs: b.runs.len() as u32,
        table_crc: 0,
        data_end: b.out.len() as u32,
        removed: segment.trailer().map_or(0, |t| t.removed) + removed,
        original_end: segment.original_end().unwrap_or(end),
    };
    let tail = trailer.encode(&b.runs);
    b.out.extend_from_slice(&tail);
    let base = segment.base_position();
    let name = segment_file_name(base);
    install(
        dir,
        &name,
        &segment_tmp_name(base),
        &b.out,
        b.out.len() as u64,
        "rewrite segment",
    )?;
    let new = Segment::open(&dir.join(&name), base, false)?;
    Ok(Some(Rewrite {
        segment: new,
        removed,
        bytes_before: segment.capacity() as u64,
        bytes_after: b.out.len() as u64,
    }))
}
