//! What a bad frame in the tail segment means: the end of a write lost in a crash (cut it), or
//! damage to data that had been synced (refuse). Decided by what lies behind it, through the
//! durable position every frame carries. The rule and why it is sound: `docs/design.md`,
//! section "Recovery".
//!
//! Everything after the last intact frame is read with `pread` in chunks, not through the map:
//! most of it is usually a hole, which must not be allocated to be read.

use crate::error::{Error, Result};
use crate::format::{
    plausible_frame_header, FrameFault, FrameHeader, FRAME_CRC_AT, FRAME_FIRST_POSITION_AT,
    FRAME_HEADER_LEN, RECORD_HEADER_LEN,
};
use crate::fs::segment::Segment;
use crate::log::scan::Walked;

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
        fault => fault.to_string(),
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

/// Offset of the first non-zero byte of `segment` at or after `from`, read with `pread` (a
/// hole stays a hole); `None` if there is none.
pub(crate) fn nonzero_from(segment: &Segment, from: usize) -> Result<Option<usize>> {
    Behind::new(segment, from, 0).nonzero_from(from)
}

/// A reader of the bytes after the walk's end, a chunk at a time. Chunks overlap by a frame
/// header, so that every header lies whole in some chunk.
struct Behind<'a> {
    tail: &'a Segment,
    /// The walk's end, and the position the frame there would have started at.
    end: usize,
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
            end,
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
        let Some(header) = plausible_frame_header(&self.buf[offset - self.start..self.len]) else {
            return Ok(None);
        };
        // Between the walk's end and `offset` there is room for this many events at most.
        let room = ((offset - self.end) / (RECORD_HEADER_LEN + 2)) as u64;
        let proves = header.durable > self.position
            && header.durable <= header.first_position
            && header.first_position <= self.position.saturating_add(room)
            && header.len as usize <= self.tail.capacity() - offset;
        if !proves {
            return Ok(None);
        }
        // Rare: a plausible header. Check the whole frame's checksum, a chunk at a time.
        Ok(self
            .checksum_matches(offset, &header)?
            .then_some((offset, header)))
    }

    /// Whether the frame of `header` at `offset` has the checksum its header holds (over the
    /// frame without its CRC field, as [`crate::format`] defines it).
    fn checksum_matches(&self, offset: usize, header: &FrameHeader) -> Result<bool> {
        let mut crc = crc32fast::Hasher::new();
        let mut piece = vec![0u8; CHUNK.min(header.len as usize)];
        let mut at = 0;
        while at < header.len as usize {
            let n = piece.len().min(header.len as usize - at);
            if self.tail.read_at(offset + at, &mut piece[..n])? < n {
                return Ok(false);
            }
            // Skip the CRC field, wherever it falls in this piece.
            let skip =
                FRAME_CRC_AT.saturating_sub(at)..(FRAME_FIRST_POSITION_AT.saturating_sub(at));
            crc.update(&piece[..skip.start.min(n)]);
            crc.update(&piece[skip.end.min(n)..n]);
            at += n;
        }
        Ok(crc.finalize() == header.crc)
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
