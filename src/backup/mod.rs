//! Online backup: a consistent copy of the committed log, taken while appends go on.
//!
//! A backup copies one [`Snapshot`] of the log: every sealed segment whole and the tail up to
//! the snapshot's end, each frame's checksum and chain verified on the way (a damaged source
//! fails the backup with [`Error::Corrupt`] instead of copying the damage). Bytes below the
//! committed end never change, so no lock is held while copying and the writer goes on.
//! Sealed segments' side files, the index snapshot (when it covers no more than the copy)
//! and consumer checkpoints come along, each checked first, so the copy opens in constant
//! time; one that does not check out is left behind and rebuilt by the copy's first open.
//!
//! The copy is built in a sibling directory (`{dest}.partial`), every file synced, the
//! manifest (a clean close at the copied end) last; then that directory is renamed to `dest`
//! and the parent synced. So `dest` holds a whole backup or nothing: a failed backup removes
//! its partial directory, and one cut short by a crash leaves only `{dest}.partial`. An
//! existing empty `dest` (a mount point, say) is filled in place instead; until the copy is
//! whole it holds a `BACKUP-IN-PROGRESS` mark (and no manifest, so it does not open as a
//! store). A later backup to the same destination removes what an interrupted one left.
//! Files are always copied, never linked: a backup must outlive the disk it came from.
//!
//! May import `format`, `fs`, `log` and `index`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::format::{encode_retention, Manifest, NO_LIMIT};
use crate::fs::dir::{
    index_file_name, index_tmp_name, postings_file_name, postings_tmp_name, segment_file_name,
    segment_tmp_name, MANIFEST_FILE, MANIFEST_TMP, RETENTION_FILE, RETENTION_TMP, SNAPSHOT_FILE,
    SNAPSHOT_TMP,
};
use crate::fs::segment::Segment;
use crate::fs::{install, sync_dir};
use crate::index::mapped::MappedIndex;
use crate::index::postings::check_postings_file;
use crate::index::side_file::{index_path, SegmentIndex};
use crate::index::CHECKPOINT_INTERVAL;
use crate::lifecycle::read_retention_file;
use crate::log::scan::walk_frames_below;
use crate::log::Snapshot;
use crate::subscribe::checkpoint;

/// The file that marks a directory as a backup being built, which a later backup to the same
/// destination may remove.
const PARTIAL_MARK: &str = "BACKUP-IN-PROGRESS";

/// What [`Store::backup`](crate::Store::backup) copied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The copy holds exactly the events below this position.
    pub position: u64,
    /// Segment files copied.
    pub segments: usize,
    /// Bytes of events copied (segment data, headers included; not the zeros after it).
    pub bytes: u64,
    /// Sealed segments whose side file was copied (the others are rebuilt by the copy's first
    /// open).
    pub side_files: usize,
    /// Whether the index snapshot was copied.
    pub index_snapshot: bool,
    /// Consumer checkpoints copied.
    pub checkpoints: usize,
    /// The copy's directory.
    pub dest: PathBuf,
    /// How long the backup took.
    pub duration: Duration,
}

/// What a backup copies.
pub(crate) struct Source<'a> {
    /// The store's directory.
    pub dir: &'a Path,
    /// The committed log to copy.
    pub log: Snapshot,
    /// The fingerprint of the store's stream hash (for its index snapshot).
    pub fingerprint: u64,
    /// A stream's last version in `log`, whatever retention hides.
    pub last_version: &'a dyn Fn(&str) -> Result<Option<u64>>,
}

/// Copies `source` to `dest` (missing or an empty directory); `progress` gets the events
/// copied so far and the total, after each segment.
pub(crate) fn backup(
    source: &Source<'_>,
    dest: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupReport> {
    let started = Instant::now();
    let work = prepare(dest)?;
    let result = copy_log(source, &work, progress).and_then(|report| {
        remove_mark(&work)?;
        if work != dest {
            std::fs::rename(&work, dest)
                .map_err(|e| Error::io("rename backup into place", dest, e))?;
            sync_dir(parent_of(dest))?;
        }
        Ok(report)
    });
    match result {
        Ok(mut report) => {
            report.dest = dest.to_path_buf();
            report.duration = started.elapsed();
            Ok(report)
        }
        Err(e) => {
            // Best effort: the error says what went wrong; the partial copy is worthless.
            let _ = clear(&work, work == dest);
            Err(e)
        }
    }
}

/// Copies `source` into the empty directory `dest`.
fn copy_log(
    source: &Source<'_>,
    dest: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<BackupReport> {
    let (src, log) = (source.dir, &source.log);
    let last = log.segments.len() - 1;
    let mut report = BackupReport {
        position: log.next_position,
        segments: log.segments.len(),
        bytes: 0,
        side_files: 0,
        index_snapshot: false,
        checkpoints: 0,
        dest: dest.to_path_buf(),
        duration: Duration::ZERO,
    };
    let mut last_crc = 0;
    for (i, segment) in log.segments.iter().enumerate() {
        let next_base = log
            .segments
            .get(i + 1)
            .map_or(log.next_position, |s| s.base_position());
        let end;
        (end, last_crc) = verify_frames(segment, log.limit(i), i < last, next_base)?;
        let base = segment.base_position();
        // A rewritten segment is copied whole: its run table and trailer follow the frames.
        let data = match segment.trailer() {
            Some(_) => segment.whole(),
            None => segment.bytes().get(..end).unwrap_or_default(),
        };
        install(
            dest,
            &segment_file_name(base),
            &segment_tmp_name(base),
            data,
            segment.capacity() as u64,
            "write backup segment",
        )?;
        if i < last && copy_side_file(src, segment, dest)? {
            report.side_files += 1;
        }
        if i < last {
            copy_postings(src, segment, dest)?;
        }
        report.bytes += end as u64;
        progress(next_base, log.next_position);
    }
    report.index_snapshot = copy_index_snapshot(src, source.fingerprint, log.next_position, dest)?;
    report.checkpoints = copy_checkpoints(src, log.next_position, dest)?;
    copy_retention(src, source.last_version, dest)?;
    let tail = &log.segments[last];
    let manifest = Manifest {
        tail: tail.header(),
        closed: Some((log.tail_end as u64, last_crc)),
    };
    install(
        dest,
        MANIFEST_FILE,
        MANIFEST_TMP,
        &manifest.encode(),
        0,
        "write backup manifest",
    )?;
    Ok(report)
}

/// The directory to build the copy in, marked as a backup in progress: `dest` itself if it
/// is an existing empty directory (it may be a mount point, which cannot be renamed onto),
/// else `{dest}.partial`, renamed to `dest` at the end. What an interrupted backup left in
/// either (it holds the mark) is removed first; anything else there is refused.
fn prepare(dest: &Path) -> Result<PathBuf> {
    let work = match read_dir_entries(dest)? {
        Some(entries) if entries.is_empty() => dest.to_path_buf(),
        Some(entries) if entries.iter().any(|e| e == PARTIAL_MARK) => {
            clear(dest, true)?;
            dest.to_path_buf()
        }
        Some(_) => {
            return Err(Error::InvalidInput(format!(
                "backup destination {} is not empty: a backup never overwrites",
                dest.display()
            )))
        }
        None => {
            let name = dest.file_name().ok_or_else(|| {
                Error::InvalidInput(format!("backup destination {} has no name", dest.display()))
            })?;
            let mut partial = name.to_os_string();
            partial.push(".partial");
            let partial = dest.with_file_name(partial);
            match read_dir_entries(&partial)? {
                Some(entries) if entries.iter().any(|e| e == PARTIAL_MARK) => {
                    clear(&partial, false)?
                }
                Some(_) => {
                    return Err(Error::InvalidInput(format!(
                        "{} exists and is not a backup in progress: move it away first",
                        partial.display()
                    )))
                }
                None => {}
            }
            std::fs::create_dir_all(&partial)
                .map_err(|e| Error::io("create backup directory", &partial, e))?;
            sync_dir(parent_of(&partial))?;
            partial
        }
    };
    install(
        &work,
        PARTIAL_MARK,
        &format!("{PARTIAL_MARK}.tmp"),
        b"",
        0,
        "mark backup",
    )?;
    Ok(work)
}

/// The names in directory `dir`, `None` if it does not exist.
fn read_dir_entries(dir: &Path) -> Result<Option<Vec<String>>> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.file_name().to_string_lossy().into_owned())
                    .map_err(|e| Error::io("list backup directory", dir, e))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("open backup directory", dir, e)),
    }
}

/// Removes a backup in progress: the whole directory, or (`keep_dir`) what is in it.
fn clear(dir: &Path, keep_dir: bool) -> Result<()> {
    let removed = if keep_dir {
        std::fs::read_dir(dir).and_then(|entries| {
            entries.into_iter().try_for_each(|e| {
                let path = e?.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                }
            })
        })
    } else {
        std::fs::remove_dir_all(dir)
    };
    removed.map_err(|e| Error::io("remove an unfinished backup", dir, e))
}

/// Removes the mark once the copy is whole (its manifest written), durably.
fn remove_mark(dir: &Path) -> Result<()> {
    let mark = dir.join(PARTIAL_MARK);
    std::fs::remove_file(&mark).map_err(|e| Error::io("unmark backup", &mark, e))?;
    sync_dir(dir)
}

/// The directory holding `path` (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Checks every frame of `segment` below `limit` as opening walks them (intact, chained,
/// records consistent): a sealed segment up to the end of its data, the tail up to `limit`
/// exactly; its positions must run on to `next_base`. Returns the offset after the last
/// frame and its CRC (0 if none).
fn verify_frames(
    segment: &Segment,
    limit: usize,
    sealed: bool,
    next_base: u64,
) -> Result<(usize, u32)> {
    let walked = walk_frames_below(segment, segment.base_position(), limit, |_, _| Ok(()))?;
    let walked = match sealed {
        true => walked.sealed(segment)?,
        false if walked.end == limit => walked,
        false => {
            let reason = format!("committed data: {}", walked.fault);
            return Err(Error::corrupt(segment.path(), walked.end as u64, reason));
        }
    };
    if walked.next_position != next_base {
        return Err(Error::corrupt(
            segment.path(),
            walked.end as u64,
            format!(
                "segment ends at position {}, but the next one starts at {next_base}",
                walked.next_position
            ),
        ));
    }
    Ok((walked.end, walked.last_crc()))
}

/// Copies the side file of sealed `segment` if it checks out against the segment.
fn copy_side_file(src: &Path, segment: &Segment, dest: &Path) -> Result<bool> {
    let path = index_path(src, segment.base_position());
    let sound = matches!(SegmentIndex::load(&path, true), Ok(Some(index)) if index.check_matches(segment).is_ok());
    if !sound {
        return Ok(false);
    }
    let Some(bytes) = read_if_present(&path)? else {
        return Ok(false);
    };
    let base = segment.base_position();
    install(
        dest,
        &index_file_name(base),
        &index_tmp_name(base),
        &bytes,
        0,
        "write backup side file",
    )?;
    Ok(true)
}

/// Copies the type and category index of the sealed `segment` if it checks out whole.
fn copy_postings(src: &Path, segment: &Segment, dest: &Path) -> Result<()> {
    let Ok(Some(bytes)) = check_postings_file(src, segment) else {
        return Ok(());
    };
    let base = segment.base_position();
    install(
        dest,
        &postings_file_name(base),
        &postings_tmp_name(base),
        &bytes,
        0,
        "write backup type and category index",
    )
    .map(drop)
}

/// Copies the index snapshot if there is one that covers no more than the copy (it is
/// replaced atomically, so the one mapped here is whole) and every page of it checks out.
fn copy_index_snapshot(src: &Path, fingerprint: u64, position: u64, dest: &Path) -> Result<bool> {
    let Ok(Some(index)) = MappedIndex::open(src, fingerprint, CHECKPOINT_INTERVAL as u32) else {
        return Ok(false);
    };
    if index.header().end_position > position || !index.damaged_pages().is_empty() {
        return Ok(false);
    }
    install(
        dest,
        SNAPSHOT_FILE,
        SNAPSHOT_TMP,
        index.file_bytes(),
        0,
        "write backup index snapshot",
    )?;
    Ok(true)
}

/// Copies every consumer checkpoint that reads back, none beyond `position`: one saved while
/// the backup ran may be ahead of the copy, and a consumer restored from the copy must not
/// skip the events appended after the restore (it re-reads from `position`: at least once).
fn copy_checkpoints(src: &Path, position: u64, dest: &Path) -> Result<usize> {
    let mut copied = 0;
    for (name, saved) in checkpoint::list(src)? {
        if let Ok(saved) = saved {
            checkpoint::save(dest, &name, saved.min(position))?;
            copied += 1;
        }
    }
    Ok(copied)
}

/// Copies the retention rules (soft deletes among them: a copy without them would show
/// deleted streams again), checked first; a damaged file fails the backup. A stream deleted
/// after the copied position has a `truncate_before` past the copy's last version (given by
/// `last_version`): it is cut back to just after that version, so that appends to the
/// restored store show.
fn copy_retention(
    src: &Path,
    last_version: &dyn Fn(&str) -> Result<Option<u64>>,
    dest: &Path,
) -> Result<()> {
    let Some(entries) = read_retention_file(src)? else {
        return Ok(());
    };
    let mut copied = Vec::with_capacity(entries.len());
    for (name, truncate, count, age) in entries {
        let truncate = match truncate {
            0 => 0,
            t => last_version(&name)?.map_or(0, |v| t.min(v + 1)),
        };
        if (truncate, count, age) != (0, NO_LIMIT, NO_LIMIT) {
            copied.push((name, truncate, count, age));
        }
    }
    install(
        dest,
        RETENTION_FILE,
        RETENTION_TMP,
        &encode_retention(&copied),
        0,
        "write backup retention file",
    )
    .map(drop)
}

/// The bytes of `path`, `None` if it is gone (a writer replaced or removed it meanwhile).
fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read for backup", path, e)),
    }
}
