//! The index side file of a sealed segment (`{base:020}.idx`): what the segment holds per
//! stream and which event ids it holds, so that opening a store reads these files instead of
//! scanning the segments. Byte layout: [`crate::format`], section "Index side file".
//!
//! A side file is a cache, never trusted blindly: both of its sections are checksummed, and it
//! must describe the segment as it is (same base, sequence number, end position, last frame
//! and its CRC, and nothing after that frame). A missing, stale or damaged side file is rebuilt
//! from its segment, and the rebuild is reported.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use byteorder::{ByteOrder, LittleEndian as LE};

use crate::error::Result;
use crate::format::{
    Damage, SegmentEnd, INDEX_BASE_AT, INDEX_CRC_AT, INDEX_DATA_END_AT, INDEX_END_POSITION_AT,
    INDEX_HEADER_LEN, INDEX_IDS_CRC_AT, INDEX_IDS_OFFSET_AT, INDEX_ID_COUNT_AT, INDEX_ID_ENTRY_LEN,
    INDEX_INTERVAL_AT, INDEX_LAST_CRC_AT, INDEX_LAST_FRAME_AT, INDEX_MAGIC,
    INDEX_MIN_STREAM_ENTRY_LEN, INDEX_SEQ_AT, INDEX_STREAM_COUNT_AT, INDEX_VERSION,
    INDEX_VERSION_AT, MAX_NAME_LEN,
};
use crate::fs::dir::{index_file_name, index_tmp_name};
use crate::fs::install;
use crate::fs::segment::Segment;
use crate::index::{is_checkpoint, CHECKPOINT_INTERVAL};
use crate::log::scan::{ends_at, holds_frame, walk_frames};

/// What one segment holds of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpan {
    /// The stream's name.
    pub name: Box<str>,
    /// Version of the stream's first event in the segment.
    pub first_version: u64,
    /// Back pointer of that event.
    pub first_prev: u64,
    /// Version of the stream's last event in the segment.
    pub last_version: u64,
    /// Location of that event.
    pub last_location: u64,
    /// Locations of the segment's events of the stream whose version `v` has
    /// `(v + 1) % CHECKPOINT_INTERVAL == 0`, in order.
    pub checkpoints: Vec<u64>,
}

/// An event id held by the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdEntry {
    /// The id.
    pub id: u128,
    /// Index of the event's stream in [`SegmentIndex::streams`].
    pub stream: u32,
    /// Location of the event.
    pub location: u64,
}

/// The contents of an index side file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentIndex {
    /// Base position of the segment.
    pub base_position: u64,
    /// Sequence number of the segment.
    pub seq: u64,
    /// The segment's last frame and where its data ends.
    pub end: SegmentEnd,
    /// Every stream with events in the segment, in order of first appearance.
    pub streams: Vec<StreamSpan>,
    /// Number of event ids in the segment.
    pub id_count: u32,
    /// The ids, in position order (empty when loaded without them).
    pub ids: Vec<IdEntry>,
}

/// Path of the index side file of the segment whose base position is `base`.
pub fn index_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(index_file_name(base))
}

impl SegmentIndex {
    /// Builds the index of a sealed segment by walking all of it.
    pub fn build(segment: &Segment) -> Result<Self> {
        let mut streams: Vec<StreamSpan> = Vec::new();
        let mut by_name: HashMap<Box<str>, u32> = HashMap::new();
        let mut ids = Vec::new();
        let walked = walk_frames(segment, segment.base_position(), |ev, location| {
            let n = match by_name.get(ev.stream) {
                Some(&n) => {
                    let span = &mut streams[n as usize];
                    let next_version = span.last_version.checked_add(1);
                    if Some(ev.version) != next_version || ev.prev != span.last_location {
                        let (what, found, expected) = if Some(ev.version) != next_version {
                            ("version", ev.version, next_version.unwrap_or(u64::MAX))
                        } else {
                            ("back pointer", ev.prev, span.last_location)
                        };
                        return Err(Damage::Discontinuous {
                            stream: ev.stream.into(),
                            what,
                            found,
                            expected,
                        });
                    }
                    span.last_version = ev.version;
                    span.last_location = location;
                    n
                }
                None => {
                    let n = streams.len() as u32;
                    by_name.insert(ev.stream.into(), n);
                    streams.push(StreamSpan {
                        name: ev.stream.into(),
                        first_version: ev.version,
                        first_prev: ev.prev,
                        last_version: ev.version,
                        last_location: location,
                        checkpoints: Vec::new(),
                    });
                    n
                }
            };
            if is_checkpoint(ev.version) {
                streams[n as usize].checkpoints.push(location);
            }
            if let Some(id) = ev.id {
                ids.push(IdEntry {
                    id,
                    stream: n,
                    location,
                });
            }
            Ok(())
        })?
        .sealed(segment)?;
        Ok(SegmentIndex {
            base_position: segment.base_position(),
            seq: segment.seq(),
            end: walked.segment_end(),
            streams,
            id_count: ids.len() as u32,
            ids,
        })
    }

    /// Checks that this index describes `segment` as it is now: same identity, and its last
    /// frame is where the index says, intact, with nothing after it.
    pub fn check_matches(&self, segment: &Segment) -> std::result::Result<(), Damage> {
        let stale = |problem| Damage::Field {
            what: "index side file",
            problem,
        };
        if self.base_position != segment.base_position() || self.seq != segment.seq() {
            return Err(stale("describes another segment"));
        }
        if !holds_frame(segment, &self.end) {
            return Err(stale("does not name the segment's last frame"));
        }
        if !ends_at(segment, &self.end) {
            return Err(stale("ends before the segment's data does"));
        }
        Ok(())
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; INDEX_HEADER_LEN];
        for s in &self.streams {
            b.push(s.name.len() as u8);
            b.extend_from_slice(s.name.as_bytes());
            for v in [
                s.first_version,
                s.first_prev,
                s.last_version,
                s.last_location,
            ] {
                b.extend_from_slice(&v.to_le_bytes());
            }
            b.extend_from_slice(&(s.checkpoints.len() as u32).to_le_bytes());
            for c in &s.checkpoints {
                b.extend_from_slice(&c.to_le_bytes());
            }
        }
        let ids_offset = b.len();
        for e in &self.ids {
            b.extend_from_slice(&e.id.to_le_bytes());
            b.extend_from_slice(&e.stream.to_le_bytes());
            b.extend_from_slice(&e.location.to_le_bytes());
        }
        let h = &mut b[..INDEX_HEADER_LEN];
        h[..INDEX_VERSION_AT].copy_from_slice(&INDEX_MAGIC);
        LE::write_u32(&mut h[INDEX_VERSION_AT..], INDEX_VERSION);
        LE::write_u64(&mut h[INDEX_BASE_AT..], self.base_position);
        LE::write_u64(&mut h[INDEX_SEQ_AT..], self.seq);
        LE::write_u64(&mut h[INDEX_END_POSITION_AT..], self.end.end_position);
        LE::write_u32(&mut h[INDEX_DATA_END_AT..], self.end.data_end);
        LE::write_u32(&mut h[INDEX_LAST_FRAME_AT..], self.end.last_frame_offset);
        LE::write_u32(&mut h[INDEX_LAST_CRC_AT..], self.end.last_frame_crc);
        LE::write_u32(&mut h[INDEX_INTERVAL_AT..], CHECKPOINT_INTERVAL as u32);
        LE::write_u32(&mut h[INDEX_STREAM_COUNT_AT..], self.streams.len() as u32);
        LE::write_u32(&mut h[INDEX_ID_COUNT_AT..], self.ids.len() as u32);
        LE::write_u64(&mut h[INDEX_IDS_OFFSET_AT..], ids_offset as u64);
        let ids_crc = crc32fast::hash(&b[ids_offset..]);
        LE::write_u32(&mut b[INDEX_IDS_CRC_AT..], ids_crc);
        let crc = crc32fast::hash(&b[INDEX_BASE_AT..ids_offset]);
        LE::write_u32(&mut b[INDEX_CRC_AT..], crc);
        b
    }

    /// Writes the side file durably (temporary name, sync, rename, directory sync).
    pub fn write(&self, dir: &Path) -> Result<()> {
        let base = self.base_position;
        install(
            dir,
            &index_file_name(base),
            &index_tmp_name(base),
            &self.encode(),
            0,
            "write index file",
        )
        .map(drop)
    }

    /// The number of ids the side file at `path` says it holds, reading only its header;
    /// `None` if it is missing or its header is unreadable.
    pub fn peek_id_count(path: &Path) -> Option<u32> {
        let mut h = [0u8; INDEX_HEADER_LEN];
        File::open(path).ok()?.read_exact_at(&mut h, 0).ok()?;
        (h[..INDEX_VERSION_AT] == INDEX_MAGIC).then(|| LE::read_u32(&h[INDEX_ID_COUNT_AT..]))
    }

    /// Reads the side file at `path`, with its ids if `with_ids` (otherwise that section is
    /// not read at all). `Ok(None)` if there is no such file; `Err` says what is wrong with it.
    pub fn load(path: &Path, with_ids: bool) -> std::result::Result<Option<Self>, Damage> {
        let unreadable = |e: std::io::Error| Damage::Unreadable {
            what: "index side file",
            kind: e.kind(),
        };
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unreadable(e)),
        };
        let len = file.metadata().map_err(unreadable)?.len();
        let mut header = [0u8; INDEX_HEADER_LEN];
        file.read_exact_at(&mut header, 0)
            .map_err(|_| Damage::Short {
                what: "index side file header",
                needed: INDEX_HEADER_LEN as u64,
                available: len,
            })?;
        if header[..INDEX_VERSION_AT] != INDEX_MAGIC {
            return Err(Damage::Magic {
                what: "index side file",
            });
        }
        let found = LE::read_u32(&header[INDEX_VERSION_AT..]);
        if found != INDEX_VERSION {
            return Err(Damage::Version {
                what: "index side file",
                found,
                reads: INDEX_VERSION,
            });
        }
        let interval = LE::read_u32(&header[INDEX_INTERVAL_AT..]);
        if interval != CHECKPOINT_INTERVAL as u32 {
            return Err(Damage::Mismatch {
                what: "index side file's checkpoint interval",
                found: interval.into(),
                expected: CHECKPOINT_INTERVAL,
            });
        }
        let ids_offset = LE::read_u64(&header[INDEX_IDS_OFFSET_AT..]);
        let id_count = LE::read_u32(&header[INDEX_ID_COUNT_AT..]);
        let ids_len = u64::from(id_count) * INDEX_ID_ENTRY_LEN as u64;
        if ids_offset < INDEX_HEADER_LEN as u64 || ids_offset.checked_add(ids_len) != Some(len) {
            return Err(Damage::Mismatch {
                what: "index side file's size",
                found: len,
                expected: ids_offset.saturating_add(ids_len),
            });
        }
        let mut head = vec![0u8; ids_offset as usize];
        file.read_exact_at(&mut head, 0).map_err(unreadable)?;
        let stored = LE::read_u32(&head[INDEX_CRC_AT..]);
        let computed = crc32fast::hash(&head[INDEX_BASE_AT..]);
        if stored != computed {
            return Err(Damage::Checksum {
                what: "index side file header and streams",
                stored,
                computed,
            });
        }
        let stream_count = LE::read_u32(&head[INDEX_STREAM_COUNT_AT..]) as usize;
        let mut r = Reader {
            bytes: &head,
            at: INDEX_HEADER_LEN,
        };
        let mut streams =
            Vec::with_capacity(stream_count.min(head.len() / INDEX_MIN_STREAM_ENTRY_LEN));
        for _ in 0..stream_count {
            streams.push(r.stream_span()?);
        }
        if r.at != head.len() {
            return Err(Damage::Trailing {
                what: "index side file's streams",
                bytes: (head.len() - r.at) as u64,
            });
        }
        let mut ids = Vec::new();
        if with_ids {
            let mut raw = vec![0u8; ids_len as usize];
            file.read_exact_at(&mut raw, ids_offset)
                .map_err(unreadable)?;
            let stored = LE::read_u32(&head[INDEX_IDS_CRC_AT..]);
            let computed = crc32fast::hash(&raw);
            if stored != computed {
                return Err(Damage::Checksum {
                    what: "index side file ids",
                    stored,
                    computed,
                });
            }
            ids = raw
                .chunks_exact(INDEX_ID_ENTRY_LEN)
                .map(|c| IdEntry {
                    id: LE::read_u128(&c[0..16]),
                    stream: LE::read_u32(&c[16..20]),
                    location: LE::read_u64(&c[20..28]),
                })
                .collect();
            if ids.iter().any(|e| e.stream as usize >= streams.len()) {
                return Err(Damage::Field {
                    what: "index side file ids",
                    problem: "an id names a stream the file does not list",
                });
            }
        }
        Ok(Some(SegmentIndex {
            base_position: LE::read_u64(&head[INDEX_BASE_AT..]),
            seq: LE::read_u64(&head[INDEX_SEQ_AT..]),
            end: SegmentEnd {
                end_position: LE::read_u64(&head[INDEX_END_POSITION_AT..]),
                data_end: LE::read_u32(&head[INDEX_DATA_END_AT..]),
                last_frame_offset: LE::read_u32(&head[INDEX_LAST_FRAME_AT..]),
                last_frame_crc: LE::read_u32(&head[INDEX_LAST_CRC_AT..]),
            },
            streams,
            id_count,
            ids,
        }))
    }
}

/// Reads fields from a byte slice, failing instead of running past its end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], Damage> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(Damage::Short {
            what: "index side file stream entry",
            needed: n as u64,
            available: (self.bytes.len() - self.at) as u64,
        })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u64(&mut self) -> std::result::Result<u64, Damage> {
        self.take(8).map(LE::read_u64)
    }

    fn stream_span(&mut self) -> std::result::Result<StreamSpan, Damage> {
        let name_len = usize::from(self.take(1)?[0]);
        if name_len == 0 || name_len > MAX_NAME_LEN {
            return Err(Damage::Length {
                what: "stream name",
                length: name_len as u64,
            });
        }
        let name = std::str::from_utf8(self.take(name_len)?).map_err(|_| Damage::Field {
            what: "stream name",
            problem: "not UTF-8",
        })?;
        let first_version = self.u64()?;
        let first_prev = self.u64()?;
        let last_version = self.u64()?;
        let last_location = self.u64()?;
        let count = LE::read_u32(self.take(4)?) as usize;
        let raw = self.take(count.checked_mul(8).ok_or(Damage::Length {
            what: "checkpoint list",
            length: count as u64,
        })?)?;
        Ok(StreamSpan {
            name: name.into(),
            first_version,
            first_prev,
            last_version,
            last_location,
            checkpoints: raw.chunks_exact(8).map(LE::read_u64).collect(),
        })
    }
}
