//! The store directory: its lock, its segment files, and syncing it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const LOCK_FILE: &str = "LOCK";
const SEGMENT_EXT: &str = "log";
const TMP_EXT: &str = "tmp";

/// Name of the segment file whose first position is `base`.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}.{SEGMENT_EXT}")
}

/// Name of the temporary file a segment is created under.
pub fn tmp_file_name(base: u64) -> String {
    format!("{base:020}.{SEGMENT_EXT}.{TMP_EXT}")
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

/// Lists the segment files of `dir` as `(base position, path)`, sorted by base, and deletes
/// temporary files (`*.tmp`) that a crash left behind: they were never renamed into place, so
/// they hold nothing acknowledged.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list store directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list store directory", dir, e))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.ends_with(&format!(".{TMP_EXT}")) {
            fs::remove_file(&path).map_err(|e| Error::io("remove temporary file", &path, e))?;
            continue;
        }
        let Some(stem) = name.strip_suffix(&format!(".{SEGMENT_EXT}")) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(base) = stem.parse::<u64>() {
                segments.push((base, path));
            }
        }
    }
    segments.sort_unstable_by_key(|(base, _)| *base);
    Ok(segments)
}

/// Makes the directory's entries (created, renamed or removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync store directory", dir, e))
}
