//! The store directory: its lock, the names of its files, listing its segments.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const LOCK_FILE: &str = "LOCK";
const SEGMENT_EXT: &str = "log";
const SEGMENT_TMP_EXT: &str = "log.tmp";
const INDEX_EXT: &str = "idx";
const INDEX_TMP_EXT: &str = "idx.tmp";
const POSTINGS_EXT: &str = "tix";
const POSTINGS_TMP_EXT: &str = "tix.tmp";
/// Name of the manifest file.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// Name the manifest is written under before it replaces the old one.
pub const MANIFEST_TMP: &str = "MANIFEST.tmp";
/// Name of the index snapshot.
pub const SNAPSHOT_FILE: &str = "INDEX";
/// Name the index snapshot is written under before it replaces the old one.
pub const SNAPSHOT_TMP: &str = "INDEX.tmp";
/// Every stream's retention rules.
pub const RETENTION_FILE: &str = "RETENTION";
/// The retention file being replaced.
pub const RETENTION_TMP: &str = "RETENTION.tmp";
/// In the destination of a copy: how far it got.
pub const COPY_PROGRESS_FILE: &str = "COPY-PROGRESS";
/// The copy progress file being replaced.
pub const COPY_PROGRESS_TMP: &str = "COPY-PROGRESS.tmp";

/// Name of the segment file whose first position is `base`.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}.{SEGMENT_EXT}")
}

/// Name of the temporary file a segment is created under.
pub fn segment_tmp_name(base: u64) -> String {
    format!("{base:020}.{SEGMENT_TMP_EXT}")
}

/// Name of the index side file of the segment whose first position is `base`.
pub fn index_file_name(base: u64) -> String {
    format!("{base:020}.{INDEX_EXT}")
}

/// Name of the temporary file an index side file is written under.
pub fn index_tmp_name(base: u64) -> String {
    format!("{base:020}.{INDEX_TMP_EXT}")
}

/// Name of the type and category index of the segment whose first position is `base`.
pub fn postings_file_name(base: u64) -> String {
    format!("{base:020}.{POSTINGS_EXT}")
}

/// Name of the temporary file a type and category index is written under.
pub fn postings_tmp_name(base: u64) -> String {
    format!("{base:020}.{POSTINGS_TMP_EXT}")
}

/// The base position in a name `{base:020}.{ext}`, if the name has that form.
fn base_of(name: &str, ext: &str) -> Option<u64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
        stem.parse().ok()
    } else {
        None
    }
}

/// Whether `name` is a temporary file that annals itself creates in a store directory.
fn is_own_tmp(name: &str) -> bool {
    name == MANIFEST_TMP
        || name == SNAPSHOT_TMP
        || name == RETENTION_TMP
        || name == COPY_PROGRESS_TMP
        || base_of(name, SEGMENT_TMP_EXT).is_some()
        || base_of(name, INDEX_TMP_EXT).is_some()
        || base_of(name, POSTINGS_TMP_EXT).is_some()
}

/// The exclusive OS lock on a store directory; released when dropped or when the process dies.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Creates `dir` if missing and locks it; [`Error::Locked`] if it is locked already.
    pub fn acquire(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create store directory", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(Error::io("lock store directory", &path, e)),
        }
    }
}

/// Lists the segment files of `dir` as `(base position, path)`, sorted by base. With
/// `remove_leftovers` (never beside a live writer) it also deletes the temporary files annals
/// creates (`{base}.log.tmp`, `{base}.idx.tmp`, `{base}.tix.tmp`, `MANIFEST.tmp`, `INDEX.tmp`, `RETENTION.tmp`)
/// that a crash left behind: they were never renamed into place, so they hold nothing
/// acknowledged. Every other entry, of any kind, is left alone.
pub fn list_segments(dir: &Path, remove_leftovers: bool) -> Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list store directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list store directory", dir, e))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !is_file {
            continue;
        }
        if remove_leftovers && is_own_tmp(name) {
            super::remove_file(&path).map_err(|e| Error::io("remove temporary file", &path, e))?;
        } else if let Some(base) = base_of(name, SEGMENT_EXT) {
            segments.push((base, path));
        }
    }
    segments.sort_unstable_by_key(|(base, _)| *base);
    Ok(segments)
}
