//! What a bad frame in the tail segment means: the end of a write lost in a crash (cut it), or
//! damage to data that had been synced (refuse). Decided by what lies behind it, through the
//! durable position every frame carries. The rule and why it is sound: `docs/design.md`,
//! section "Recovery".
//!
//! Everything after the last intact frame is read with `pread` in chunks, not through the map:
//! most of it is usually a hole, which must not be allocated to be read.

use crate::error::{Error, Result};
use crate::format::{
    plausible_frame_header, read_frame, FrameFault, FrameHeader, FRAME_HEADER_LEN,
};
use crate::scan::Walked;
use crate::segment::Segment;

/// Bytes read at a time while looking past the end of the walk.
const CHUNK: usize = 1 << 20;

/// Judges the end of a walk over the tail segment. `Ok(None)`: the walk reached the end of
/// the data, and nothing but zeros follows. `Ok(Some(reason))`: what follows the last intact
/// frame may be cut (nothing behind it proves it was synced). `Err(Corrupt)`: an intact frame
/// behind the walk's end was written after the data at that end was on stable storage, so the
/// data there was damaged after it was synced.
pub(crate) fn judge(tail: &Segment, walked: &Walked) -> Result<Option<String>> {
    let end = walked.end;
    let mut behind = Behind::new(tail, end, walked.next_position);
    let reason = match &walked.fault {
        FrameFault::End => match behind.nonzero_from(end)? {
            None => return Ok(None),
            Some(at) => format!("no frame at offset {end}, but non-zero bytes at offset {at}"),
        },
        fault => fault.describe(),
    };
    if let Some((offset, header)) = behind.durable_frame()? {
        return Err(Error::corrupt(
            tail.path(),
            end as u64,
            format!(
                "{reason}; yet the intact frame at offset {offset} (positions from {}) was \
                 written when every position below {} was on stable storage, so position {} \
                 here had been synced: acknowledged data was damaged, not torn by a crash",
                header.first_position, header.durable, walked.next_position
            ),
        ));
    }
    Ok(Some(reason))
}

/// A reader of the bytes after the walk's end, a chunk at a time. Chunks overlap by a frame
/// header, so that every header lies whole in some chunk.
struct Behind<'a> {
    tail: &'a Segment,
    /// Position the frame at the walk's end would have started at.
    position: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`, and how many bytes of it are valid.
    start: usize,
    len: usize,
    /// The next offset to examine as a frame start.
    next: usize,
}

impl<'a> Behind<'a> {
    fn new(tail: &'a Segment, end: usize, position: u64) -> Self {
        Behind {
            tail,
            position,
            buf: vec![0; CHUNK],
            start: end,
            len: 0,
            // The frame at the walk's end is the bad one; candidates start after it.
            next: end + 1,
        }
    }

    /// Makes the chunk hold `offset` and the header-sized run after it (when the file
    /// does). `false` at the end of the file.
    fn load(&mut self, offset: usize) -> Result<bool> {
        let wanted = offset + FRAME_HEADER_LEN.min(self.tail.capacity().saturating_sub(offset));
        if offset >= self.start && wanted <= self.start + self.len {
            return Ok(offset < self.start + self.len);
        }
        self.start = offset;
        self.len = self.tail.read_at(offset, &mut self.buf)?;
        Ok(self.len > 0)
    }

    /// Offset of the first non-zero byte at or after `from`.
    fn nonzero_from(&mut self, mut from: usize) -> Result<Option<usize>> {
        while self.load(from)? {
            let chunk = &self.buf[from - self.start..self.len];
            if let Some(i) = first_nonzero(chunk) {
                return Ok(Some(from + i));
            }
            from = self.start + self.len;
        }
        Ok(None)
    }

    /// The first intact frame after the walk's end whose durable position is above the
    /// position expected there, with its offset. Every offset is a candidate, not only the
    /// frame boundaries a damaged length would point to; runs of zeros are skipped, since a
    /// frame starts with its length, which is never zero.
    fn durable_frame(&mut self) -> Result<Option<(usize, FrameHeader)>> {
        let mut at = self.next;
        while let Some(k) = self.nonzero_from(at)? {
            // Only the offsets up to 3 bytes before a non-zero byte can hold a non-zero length.
            for offset in self.next.max(k.saturating_sub(3))..=k {
                if let Some(found) = self.durable_frame_at(offset)? {
                    return Ok(Some(found));
                }
            }
            self.next = k + 1;
            at = k + 1;
        }
        Ok(None)
    }

    /// The frame at `offset`, if it is intact and proves the expected position was synced.
    fn durable_frame_at(&mut self, offset: usize) -> Result<Option<(usize, FrameHeader)>> {
        if !self.load(offset)? {
            return Ok(None);
        }
        let in_file = self.tail.capacity() - offset;
        let Some(header) = plausible_frame_header(&self.buf[offset - self.start..self.len]) else {
            return Ok(None);
        };
        let proves = header.durable > self.position && header.durable <= header.first_position;
        if !proves || header.len as usize > in_file {
            return Ok(None);
        }
        // Rare: a plausible header. Read the whole frame to check its checksum.
        let mut frame = vec![0; header.len as usize];
        if self.tail.read_at(offset, &mut frame)? < frame.len() {
            return Ok(None);
        }
        Ok(read_frame(&frame).ok().map(|f| (offset, f.header)))
    }
}

/// Index of the first non-zero byte of `b`.
fn first_nonzero(b: &[u8]) -> Option<usize> {
    const STRIDE: usize = 256;
    let mut base = 0;
    for chunk in b.chunks(STRIDE) {
        // An OR over the chunk compiles to wide loads: zeros are skipped at memory speed.
        if chunk.iter().fold(0u8, |acc, &x| acc | x) != 0 {
            return chunk.iter().position(|&x| x != 0).map(|i| base + i);
        }
        base += chunk.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::first_nonzero;

    #[test]
    fn first_nonzero_finds_the_first_set_byte_anywhere() {
        assert_eq!(first_nonzero(&[]), None);
        assert_eq!(first_nonzero(&[0; 1000]), None);
        for at in [0, 1, 255, 256, 257, 999] {
            let mut b = vec![0u8; 1000];
            b[at] = 7;
            b[999] = 1;
            assert_eq!(first_nonzero(&b), Some(at));
        }
    }
}
