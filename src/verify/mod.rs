//! [`verify`]: reads every byte of a store's files and lists every damage it finds, without
//! opening the store (so it works on a store that refuses to open, and beside a live writer)
//! and without changing a byte.
//!
//! Segments: every frame's checksum and chain, every record inside, positions dense across
//! segments, zeros after the data of sealed segments; after a damaged frame the walk looks
//! for the next intact frame that continues the positions, so one flipped byte does not hide
//! a later one. The tail's end is judged as opening judges it: a torn write that nothing
//! proves synced is reported apart ([`VerifyReport::torn_tail`]), not as damage. Side files,
//! the index snapshot (every page), the manifest and consumer checkpoints are checked too.
//!
//! May import `format`, `fs`, `log`, `index` and `recover`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{
    decode_checkpoint, decode_record, plausible_frame_header, read_frame, FrameFault,
    FRAME_HEADER_LEN, SEGMENT_HEADER_LEN,
};
use crate::fs::dir::{
    list_segments, postings_file_name, MANIFEST_FILE, RETENTION_FILE, SNAPSHOT_FILE,
};
use crate::fs::manifest;
use crate::fs::segment::Segment;
use crate::index::mapped::MappedIndex;
use crate::index::persist::fingerprint;
use crate::index::postings::check_postings_file;
use crate::index::side_file::{index_path, SegmentIndex};
use crate::index::{default_stream_hash, CHECKPOINT_INTERVAL};
use crate::lifecycle::read_retention_file;
use crate::log::scan::walk_frames;
use crate::recover::{judge_tail, nonzero_from};

/// One damage [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// The damaged file.
    pub file: PathBuf,
    /// Byte offset of the damage in `file`.
    pub offset: u64,
    /// The stream of the damaged event, when the bytes still say it.
    pub stream: Option<String>,
    /// What is wrong.
    pub problem: String,
}

/// What [`verify`] read and found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Files read.
    pub files: usize,
    /// Bytes of segment data read.
    pub bytes: u64,
    /// Events in intact frames.
    pub events: u64,
    /// Every damage, in file order.
    pub damages: Vec<Finding>,
    /// An unsynced write torn by a crash at the end of the tail, which the next writable
    /// opening cuts (nothing acknowledged is lost): not damage.
    pub torn_tail: Option<Finding>,
    /// How long it took.
    pub duration: Duration,
}

impl VerifyReport {
    /// Whether nothing is damaged.
    pub fn is_sound(&self) -> bool {
        self.damages.is_empty()
    }
}

/// Reads every segment, side file, index snapshot page, the manifest and every checkpoint of
/// the store in `dir` and lists every damage. `Err` only when `dir` cannot be read or holds
/// no store; damage is in the report.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use annals::{EventData, ExpectedVersion, Store};
///
/// let store = Store::open(dir.path())?;
/// store.append("order-1", ExpectedVersion::Any, [EventData::new("Placed", b"{}".to_vec())])?;
/// let report = annals::verify(dir.path())?;   // beside the open store, too
/// assert!(report.is_sound());
/// assert_eq!(report.events, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport> {
    verify_with_progress(dir, |_, _| {})
}

/// [`verify`], calling `progress(segments checked, segments)` after each segment.
pub fn verify_with_progress(
    dir: impl AsRef<Path>,
    mut progress: impl FnMut(u64, u64),
) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let started = Instant::now();
    let paths = list_segments(dir, false)?;
    if paths.is_empty() {
        return Err(Error::not_a_store(dir));
    }
    let mut report = VerifyReport {
        files: 0,
        bytes: 0,
        events: 0,
        damages: Vec::new(),
        torn_tail: None,
        duration: Duration::ZERO,
    };
    let mut position = 0;
    let count = paths.len();
    for (i, (base, path)) in paths.into_iter().enumerate() {
        report.files += 1;
        let segment = match Segment::open(&path, base, false) {
            Ok(segment) => segment,
            Err(e) => {
                report.damages.push(finding_of(e, &path));
                position = base;
                continue;
            }
        };
        if segment.seq() != i as u64 || base != position {
            report.damages.push(Finding {
                file: path.clone(),
                offset: 0,
                stream: None,
                problem: format!(
                    "segment number {} at position {base}, where number {i} at position \
                     {position} was expected: segments or events are missing",
                    segment.seq()
                ),
            });
        }
        if i + 1 == count {
            position = verify_tail(&segment, &mut report);
        } else {
            let walk = walk_segment(&segment, &mut report);
            position = walk.position;
            if let Some(problem) = check_rewritten(&segment, &walk) {
                report.damages.push(Finding {
                    file: path.clone(),
                    offset: walk.end as u64,
                    stream: None,
                    problem,
                });
            } else if walk.stopped.is_none() && segment.trailer().is_none() {
                if let Some(at) = nonzero_from(&segment, walk.end)? {
                    report.damages.push(Finding {
                        file: path.clone(),
                        offset: at as u64,
                        stream: None,
                        problem: "non-zero bytes after the last frame of a sealed segment".into(),
                    });
                }
            }
            report.damages.extend(walk.findings);
            check_side_file(dir, &segment, &mut report);
        }
        progress(i as u64 + 1, count as u64);
    }
    check_small_files(dir, &mut report)?;
    report.duration = started.elapsed();
    Ok(report)
}

/// What walking one segment found.
struct Walk {
    /// Position after the last intact event.
    position: u64,
    /// Offset after the last intact frame.
    end: usize,
    /// Offset of the first bad frame, if the walk met one.
    stopped: Option<usize>,
    findings: Vec<Finding>,
}

/// Walks every frame of `segment`, going on after damage where an intact frame that continues
/// the positions can be found.
fn walk_segment(segment: &Segment, report: &mut VerifyReport) -> Walk {
    let bytes = segment.bytes();
    let mut walk = Walk {
        position: segment.base_position(),
        end: SEGMENT_HEADER_LEN,
        stopped: None,
        findings: Vec::new(),
    };
    let mut offset = SEGMENT_HEADER_LEN;
    let mut prev_crc = Some(0);
    while offset < bytes.len() {
        let data = &bytes[offset..];
        let problem = match read_frame(data) {
            Err(FrameFault::End) => break,
            Err(fault) => fault.to_string(),
            Ok(frame) => {
                let h = frame.header;
                let records = frame.records().try_for_each(|r| r.map(drop));
                // A rewritten segment's positions jump over the events it removed.
                let hole = segment.trailer().is_some() && h.first_position > walk.position;
                if h.first_position != walk.position && !hole {
                    format!(
                        "frame starts at position {}, where {} was expected",
                        h.first_position, walk.position
                    )
                } else if prev_crc.is_some_and(|crc| crc != h.prev_crc) {
                    "frame does not chain to the previous frame's checksum (a stale frame)".into()
                } else if let Err(damage) = records {
                    format!("a record inside an intact frame: {damage}")
                } else {
                    report.events += u64::from(h.count);
                    report.bytes += u64::from(h.len);
                    walk.position = h.end_position();
                    prev_crc = Some(h.crc);
                    offset += h.len as usize;
                    walk.end = offset;
                    continue;
                }
            }
        };
        walk.stopped.get_or_insert(offset);
        walk.findings.push(Finding {
            file: segment.path().to_path_buf(),
            offset: offset as u64,
            stream: stream_hint(data),
            problem,
        });
        match resync(bytes, offset, walk.position) {
            Some((next, first_position)) => {
                offset = next;
                walk.position = first_position;
                prev_crc = None;
            }
            None => break,
        }
    }
    if let Some(end) = segment.original_end() {
        // Events removed from its end leave a hole up to where the segment first ended.
        walk.position = walk.position.max(end.end_position);
    }
    walk
}

/// What is wrong with the run table or the end of a rewritten segment, if anything.
fn check_rewritten(segment: &Segment, walk: &Walk) -> Option<String> {
    let trailer = segment.trailer()?;
    if let Err(e) = segment.locate(SEGMENT_HEADER_LEN) {
        return Some(e.to_string());
    }
    if walk.stopped.is_none() && walk.end != trailer.data_end as usize {
        return Some(format!(
            "the frames end at offset {}, the trailer says {}",
            walk.end, trailer.data_end
        ));
    }
    None
}

/// The next intact frame after the bad one at `bad`: its offset and first position. A frame
/// whose header survived names where the next one starts; otherwise every later offset is a
/// candidate whose header must claim a position close after `position` (a strong filter on
/// arbitrary bytes) before its checksum is computed.
fn resync(bytes: &[u8], bad: usize, position: u64) -> Option<(usize, u64)> {
    let intact_at = |offset: usize, lo: u64, hi: u64| {
        let h = plausible_frame_header(bytes.get(offset..)?)?;
        if !(lo..=hi).contains(&h.first_position) {
            return None;
        }
        read_frame(&bytes[offset..])
            .ok()
            .map(|f| (offset, f.header.first_position))
    };
    if let Some(h) = plausible_frame_header(&bytes[bad..]) {
        let next = bad + h.len as usize;
        let after = h.end_position();
        if let Some(found) = intact_at(next, after, after) {
            return Some(found);
        }
    }
    let mut offset = bad + 1;
    while offset + FRAME_HEADER_LEN <= bytes.len() {
        // A frame starts with its length, never zero: skip runs of zeros (most of a tail).
        if bytes[offset..offset + 4] == [0; 4] {
            let next = bytes[offset + 4..].iter().position(|&b| b != 0)?;
            offset = (offset + 4 + next).saturating_sub(3).max(offset + 1);
            continue;
        }
        // Bytes between `bad` and here hold this many events at most.
        let room = ((offset - bad) / FRAME_HEADER_LEN) as u64 + 1;
        if let Some(found) = intact_at(offset, position, position.saturating_add(room)) {
            return Some(found);
        }
        offset += 1;
    }
    None
}

/// The stream of the first record of a damaged frame starting at `data`, if its layout still
/// reads (its own checksum is not required: the damage may lie in that very record).
fn stream_hint(data: &[u8]) -> Option<String> {
    let records = data.get(FRAME_HEADER_LEN..)?;
    decode_record(records, false)
        .ok()
        .map(|(record, _)| record.stream.to_string())
}

/// The tail, judged from one walk as opening judges it (a live writer may append meanwhile):
/// intact up to its end, or torn by a crash (reported apart), or damaged, and then every
/// damage is listed by walking on. Returns the position after its last intact event.
fn verify_tail(tail: &Segment, report: &mut VerifyReport) -> u64 {
    let base = tail.base_position();
    // The walk (through the map) and the judgement (with `pread`) read at different moments:
    // a frame a live writer adds in between looks like damage behind the walk's end. A walk
    // that then gets further proves it was growth; damage stops every walk at the same place.
    let mut verdict = Err(Error::InvalidInput(String::new()));
    let mut stopped_at = None;
    for _ in 0..10 {
        verdict = walk_frames(tail, base, |_, _| Ok(()))
            .and_then(|walked| Ok((judge_tail(tail, &walked)?, walked)));
        let end = match &verdict {
            Err(Error::Corrupt { offset, .. }) => Some(*offset),
            _ => break,
        };
        if end == stopped_at {
            break;
        }
        stopped_at = end;
    }
    match verdict {
        Ok((judged, walked)) => {
            report.events += walked.next_position - base;
            report.bytes += (walked.end - SEGMENT_HEADER_LEN) as u64;
            report.torn_tail = judged.map(|reason| Finding {
                file: tail.path().to_path_buf(),
                offset: walked.end as u64,
                stream: None,
                problem: reason,
            });
            walked.next_position
        }
        Err(e) => {
            let walk = walk_segment(tail, report);
            if walk.findings.is_empty() {
                report.damages.push(finding_of(e, tail.path()));
            }
            report.damages.extend(walk.findings);
            walk.position
        }
    }
}

/// Checks the side file of sealed `segment`; a missing one is not damage (opening rebuilds it).
fn check_side_file(dir: &Path, segment: &Segment, report: &mut VerifyReport) {
    if let Err(damage) = check_postings_file(dir, segment) {
        report.damages.push(Finding {
            file: dir.join(postings_file_name(segment.base_position())),
            offset: 0,
            stream: None,
            problem: format!("{damage} (a cache: readers rebuild it from the segment)"),
        });
    }
    let path = index_path(dir, segment.base_position());
    let problem = match SegmentIndex::load(&path, true) {
        Ok(None) => return,
        Ok(Some(index)) => match index.check_matches(segment) {
            Ok(()) => None,
            Err(damage) => Some(damage.to_string()),
        },
        Err(damage) => Some(damage.to_string()),
    };
    report.files += 1;
    if let Some(problem) = problem {
        report.damages.push(Finding {
            file: path,
            offset: 0,
            stream: None,
            problem: format!("{problem} (a cache: opening rebuilds it from the segment)"),
        });
    }
}

/// Checks the index snapshot (every page), the manifest and every consumer checkpoint.
fn check_small_files(dir: &Path, report: &mut VerifyReport) -> Result<()> {
    let fingerprint = fingerprint(default_stream_hash);
    match MappedIndex::open(dir, fingerprint, CHECKPOINT_INTERVAL as u32) {
        Ok(None) => {}
        Ok(Some(index)) => {
            report.files += 1;
            report.damages.extend(
                index
                    .damaged_pages()
                    .into_iter()
                    .map(|e| finding_of(e, dir)),
            );
        }
        Err(problem) => {
            report.files += 1;
            report.damages.push(Finding {
                file: dir.join(SNAPSHOT_FILE),
                offset: 0,
                stream: None,
                problem,
            });
        }
    }
    report.files += 1;
    if let Err(e) = manifest::read(dir) {
        report.damages.push(finding_of(e, &dir.join(MANIFEST_FILE)));
    }
    match read_retention_file(dir) {
        Ok(None) => {}
        Ok(Some(_)) => report.files += 1,
        Err(e) => {
            report.files += 1;
            report
                .damages
                .push(finding_of(e, &dir.join(RETENTION_FILE)));
        }
    }
    let checkpoints = dir.join("checkpoints");
    let Ok(entries) = std::fs::read_dir(&checkpoints) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'))
        {
            continue;
        }
        report.files += 1;
        let problem = match std::fs::read(&path) {
            Ok(bytes) => decode_checkpoint(&bytes).err(),
            Err(e) => {
                Some((0, "cannot be read")).filter(|_| e.kind() != std::io::ErrorKind::NotFound)
            }
        };
        if let Some((offset, problem)) = problem {
            report.damages.push(Finding {
                file: path,
                offset,
                stream: None,
                problem: problem.to_string(),
            });
        }
    }
    Ok(())
}

/// An error met while checking `file`, as a finding.
fn finding_of(error: Error, file: &Path) -> Finding {
    match error {
        Error::Corrupt {
            file,
            offset,
            reason,
        } => Finding {
            file,
            offset,
            stream: None,
            problem: reason,
        },
        other => Finding {
            file: file.to_path_buf(),
            offset: 0,
            stream: None,
            problem: other.to_string(),
        },
    }
}
