//! One segment file: create it at full size, open and map it, write frames into it, cut a torn
//! tail off it. The byte layout is in [`crate::format`].

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::format::{
    read_frame, run_holding, FrameFault, SegmentEnd, SegmentHeader, Trailer, HEADER_BASE_AT,
    SEGMENT_HEADER_LEN, TRAILER_LEN,
};
use crate::fs::dir::{segment_file_name, segment_tmp_name};
use crate::fs::{self, install};

/// An open segment file and a read-only map of all of it.
///
/// Bytes below the store's committed end never change while the segment is open (the writer
/// only writes beyond it), which is what makes reading them through the map sound.
#[derive(Debug)]
pub struct Segment {
    path: PathBuf,
    header: SegmentHeader,
    file: File,
    map: Mmap,
    /// Set for a segment that compaction or erasure rewrote (see [`crate::format::rewritten`]).
    rewritten: Option<Rewritten>,
}

/// What a rewritten segment adds: its trailer, and whether its run table's CRC matched
/// (checked at the first lookup, so that opening reads only the trailer).
#[derive(Debug)]
struct Rewritten {
    trailer: Trailer,
    table_checked: OnceLock<std::result::Result<(), String>>,
}

impl Segment {
    /// Creates the segment whose first position is `base_position`, `capacity` bytes long
    /// (zeros after the header), durably: written under a temporary name, synced, renamed into
    /// place, directory synced.
    pub fn create(dir: &Path, base_position: u64, seq: u64, capacity: u64) -> Result<Self> {
        let name = segment_file_name(base_position);
        let path = dir.join(&name);
        let header = SegmentHeader { base_position, seq };
        let file = install(
            dir,
            &name,
            &segment_tmp_name(base_position),
            &header.encode(),
            capacity.max(SEGMENT_HEADER_LEN as u64),
            "create segment",
        )?;
        let map = map_file(&file, &path)?;
        Ok(Segment {
            path,
            header,
            file,
            map,
            rewritten: None,
        })
    }

    /// Opens an existing segment file and checks its header against the base position its
    /// name gives; for reading only unless `writable`.
    pub fn open(path: &Path, base_from_name: u64, writable: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| Error::io("open segment", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat segment", path, e))?
            .len();
        if len < SEGMENT_HEADER_LEN as u64 {
            return Err(Error::corrupt(
                path,
                0,
                format!("segment file of {len} bytes is shorter than its header"),
            ));
        }
        let map = map_file(&file, path)?;
        let (header, rewritten) =
            SegmentHeader::decode(&map).map_err(|reason| Error::corrupt(path, 0, reason))?;
        let rewritten = match rewritten {
            false => None,
            true => {
                let trailer = Trailer::decode(&map).map_err(|reason| {
                    Error::corrupt(path, map.len().saturating_sub(TRAILER_LEN) as u64, reason)
                })?;
                Some(Rewritten {
                    trailer,
                    table_checked: OnceLock::new(),
                })
            }
        };
        if header.base_position != base_from_name {
            return Err(Error::corrupt(
                path,
                HEADER_BASE_AT as u64,
                format!(
                    "header says base position {}, file name says {base_from_name}",
                    header.base_position
                ),
            ));
        }
        Ok(Segment {
            path: path.to_path_buf(),
            header,
            file,
            map,
            rewritten,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The segment's header.
    pub fn header(&self) -> SegmentHeader {
        self.header
    }

    /// First global position of the segment.
    pub fn base_position(&self) -> u64 {
        self.header.base_position
    }

    /// Ordinal of the segment.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// The bytes that hold frames, header included: the whole file as mapped, or up to the
    /// end of the frames of a rewritten segment.
    pub fn bytes(&self) -> &[u8] {
        match &self.rewritten {
            Some(r) => &self.map[..r.trailer.data_end as usize],
            None => &self.map,
        }
    }

    /// The whole file as mapped (a rewritten segment's run table and trailer included).
    pub fn whole(&self) -> &[u8] {
        &self.map
    }

    /// The trailer of a segment that compaction or erasure rewrote; `None` for others.
    pub fn trailer(&self) -> Option<&Trailer> {
        self.rewritten.as_ref().map(|r| &r.trailer)
    }

    /// The end of the segment as first written, for a rewritten one.
    pub fn original_end(&self) -> Option<SegmentEnd> {
        self.trailer().map(|t| t.original_end)
    }

    /// Where the record first written at `original` offset is now: the same offset in a
    /// segment never rewritten, `None` if a rewrite removed it.
    pub fn locate(&self, original: usize) -> Result<Option<usize>> {
        self.translate(original, true)
    }

    /// The original offset of the record at `offset` (the same offset in a segment never
    /// rewritten).
    pub fn original_offset(&self, offset: usize) -> Result<usize> {
        self.translate(offset, false)?.ok_or_else(|| {
            Error::corrupt(
                &self.path,
                offset as u64,
                "a record of the rewritten segment lies in no run of its table",
            )
        })
    }

    /// Maps an offset through the run table, from original to new offsets or back.
    fn translate(&self, offset: usize, from_original: bool) -> Result<Option<usize>> {
        let Some(r) = &self.rewritten else {
            return Ok(Some(offset));
        };
        let checked = r.table_checked.get_or_init(|| {
            r.trailer
                .table(&self.map)
                .map(drop)
                .map_err(|d| d.to_string())
        });
        if let Err(reason) = checked {
            let at = self.map.len().saturating_sub(TRAILER_LEN) as u64;
            return Err(Error::corrupt(&self.path, at, reason.clone()));
        }
        let table = r.trailer.table_unchecked(&self.map);
        let Ok(offset32) = u32::try_from(offset) else {
            return Ok(None);
        };
        Ok(run_holding(table, offset32, from_original).map(|run| {
            let (from, to) = match from_original {
                true => (run.original, run.new),
                false => (run.new, run.original),
            };
            (to + (offset32 - from)) as usize
        }))
    }

    /// Size of the file in bytes.
    pub fn capacity(&self) -> usize {
        self.map.len()
    }

    /// Whether the segment holds no frame.
    pub fn is_empty(&self) -> bool {
        matches!(
            read_frame(self.bytes().get(SEGMENT_HEADER_LEN..).unwrap_or_default()),
            Err(FrameFault::End)
        )
    }

    /// Reads into `buf` from `offset` with `pread`, not through the map: a hole in the file
    /// reads as zeros without being allocated (reading one through the map of a file on a
    /// full tmpfs would kill the process with SIGBUS). Returns the bytes read, fewer than
    /// `buf.len()` only at the end of the file.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], (offset + done) as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read segment", &self.path, e)),
            }
        }
        Ok(done)
    }

    /// Writes `bytes` at `offset` (beyond the committed end).
    pub fn write_at(&self, offset: usize, bytes: &[u8]) -> Result<()> {
        fs::write_at(&self.file, &self.path, offset as u64, bytes)
            .map_err(|e| Error::io("write", &self.path, e))
    }

    /// `fdatasync`: the written bytes are on stable storage when it returns.
    pub fn sync_data(&self) -> Result<()> {
        fs::sync_data(&self.file, &self.path).map_err(|e| Error::io("fdatasync", &self.path, e))
    }

    /// Zeroes the file from `offset` to its end (truncating and re-extending it) and syncs:
    /// cuts a torn tail while opening, and discards a failed batch. The map stays valid: the
    /// file keeps its size, and no reader reads past the committed end, which is at or before
    /// `offset`.
    pub fn zero_from(&self, offset: usize) -> Result<()> {
        let capacity = self.capacity() as u64;
        let (file, path) = (&self.file, self.path.as_path());
        fs::set_len(file, path, offset as u64)
            .and_then(|()| fs::set_len(file, path, capacity))
            .and_then(|()| fs::sync_all(file, path))
            .map_err(|e| Error::io("discard unacknowledged bytes", &self.path, e))
    }

    /// Returns the segment grown to `capacity` bytes and mapped anew; the old value stays valid
    /// for readers that hold it. Used for an append larger than an empty tail segment.
    pub fn grow(&self, capacity: usize) -> Result<Self> {
        let file = self
            .file
            .try_clone()
            .map_err(|e| Error::io("duplicate file handle", &self.path, e))?;
        fs::set_len(&file, &self.path, capacity as u64)
            .and_then(|()| fs::sync_all(&file, &self.path))
            .map_err(|e| Error::io("grow segment", &self.path, e))?;
        let map = map_file(&file, &self.path)?;
        Ok(Segment {
            path: self.path.clone(),
            header: self.header,
            file,
            map,
            rewritten: None,
        })
    }
}

fn map_file(file: &File, path: &Path) -> Result<Mmap> {
    // SAFETY: the map is read-only and annals never changes bytes that a reader can reach:
    // readers read only below the committed end; the writer writes only past it; a torn tail is
    // cut while opening, before any reader exists; a failed write is zeroed (the file truncated
    // to where that write began, then extended again) only past the committed end, so the file
    // never becomes shorter than what readers read; and the directory lock keeps other annals
    // writers out. Compaction and erasure never write into a segment file: they write a new
    // file and rename it over the old one, whose inode and every map of it stay as they were
    // until unmapped. A read-only handle in another process (no lock) reads only the whole frames
    // it found when it opened, which the writer never changes: it writes past them, and a
    // recovery cuts only after the last intact frame. Two exceptions, documented at
    // `Store::open_read_only`: a frame whose write or `fdatasync` then fails is zeroed, and a
    // read-only handle that opened in between and reads it at that moment can meet the file
    // shortened for an instant (SIGBUS); and a writer's opening that cuts a torn tail can
    // shorten the file for an instant right where a read-only opening running then looks.
    // Another program that truncates or rewrites a segment of an open store breaks this; that
    // is documented as unsupported in the crate docs.
    unsafe { Mmap::map(file) }.map_err(|e| Error::io("map segment", path, e))
}
