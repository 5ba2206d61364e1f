//! Every change annals makes to the files of a store goes through this module: creating,
//! writing, resizing, syncing, renaming and removing files, and syncing the directory. One
//! place for the durable-replace dance (temporary file, sync, rename, directory sync), and one
//! place where the crash-state tests record what a workload did to the disk (`trace`, built
//! only for the crate's own tests).
//!
//! Owns the files themselves: the directory and its lock ([`dir`]), segment files ([`segment`]),
//! the manifest ([`manifest`]), the index snapshot ([`snapshot`]). May import `format` only (and the shared `error`).

pub(crate) mod dir;
pub(crate) mod manifest;
pub(crate) mod segment;
pub(crate) mod snapshot;
#[cfg(test)]
pub(crate) mod trace;

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{Error, Result};

/// Records an operation for the crash-state tests; nothing in other builds.
macro_rules! record {
    ($op:expr) => {
        #[cfg(test)]
        trace::record($op);
    };
}

/// Creates (or truncates) `path`, open for reading and writing.
pub(crate) fn create(path: &Path) -> std::io::Result<File> {
    record!(trace::Op::Create(path.to_path_buf()));
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Writes all of `bytes` at `offset` of `file` (opened at `path`).
#[cfg_attr(not(test), allow(unused_variables))] // `path` is for the trace
pub(crate) fn write_at(file: &File, path: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    record!(trace::Op::Write {
        path: path.to_path_buf(),
        offset,
        bytes: bytes.to_vec(),
    });
    file.write_all_at(bytes, offset)
}

/// Sets the length of `file` (opened at `path`); new bytes read as zeros.
#[cfg_attr(not(test), allow(unused_variables))] // `path` is for the trace
pub(crate) fn set_len(file: &File, path: &Path, len: u64) -> std::io::Result<()> {
    record!(trace::Op::SetLen {
        path: path.to_path_buf(),
        len,
    });
    file.set_len(len)
}

/// `fdatasync`: the file's data (and the size it needs to read it) is on stable storage.
#[cfg_attr(not(test), allow(unused_variables))] // `path` is for the trace
pub(crate) fn sync_data(file: &File, path: &Path) -> std::io::Result<()> {
    let result = file.sync_data();
    record!(trace::Op::Sync(path.to_path_buf()));
    result
}

/// `fsync`: the file's data and metadata are on stable storage.
#[cfg_attr(not(test), allow(unused_variables))] // `path` is for the trace
pub(crate) fn sync_all(file: &File, path: &Path) -> std::io::Result<()> {
    let result = file.sync_all();
    record!(trace::Op::Sync(path.to_path_buf()));
    result
}

/// Renames `from` to `to`, replacing `to`; durable once the directory is synced.
pub(crate) fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    record!(trace::Op::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
    });
    fs::rename(from, to)
}

/// Removes the file `path`; durable once the directory is synced.
pub(crate) fn remove_file(path: &Path) -> std::io::Result<()> {
    record!(trace::Op::Remove(path.to_path_buf()));
    fs::remove_file(path)
}

/// Makes the directory's entries (created, renamed or removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let result = File::open(dir).and_then(|d| d.sync_all());
    record!(trace::Op::SyncDir(dir.to_path_buf()));
    result.map_err(|e| Error::io("sync store directory", dir, e))
}

/// Creates the file `dir/name` durably and atomically: `bytes` (then zeros up to `len`) are
/// written under the temporary name `dir/tmp`, synced, renamed to `name`, and the directory
/// synced. A crash leaves the old file (or none) or the new one, never a part of it. Returns
/// the new file, open for reading and writing. `what` names the file in errors.
pub(crate) fn install(
    dir: &Path,
    name: &str,
    tmp: &str,
    bytes: &[u8],
    len: u64,
    what: &'static str,
) -> Result<File> {
    let tmp = dir.join(tmp);
    let path = dir.join(name);
    let file = create(&tmp)
        .and_then(|file| {
            write_at(&file, &tmp, 0, bytes)?;
            if len > bytes.len() as u64 {
                set_len(&file, &tmp, len)?;
            }
            sync_all(&file, &tmp)?;
            Ok(file)
        })
        .map_err(|e| {
            // Best effort: do not leave a partial file taking space (a full disk, say).
            let _ = fs::remove_file(&tmp);
            Error::io(what, &tmp, e)
        })?;
    rename(&tmp, &path).map_err(|e| Error::io(what, &path, e))?;
    sync_dir(dir)?;
    Ok(file)
}
