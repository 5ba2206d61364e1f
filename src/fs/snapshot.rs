//! The index snapshot file: written whole and installed atomically, then read through a
//! read-only map. The byte layout is in [`crate::format::index_snapshot`].

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;

use crate::error::{Error, Result};
use crate::fs::dir::{SNAPSHOT_FILE, SNAPSHOT_TMP};
use crate::fs::install;

/// Replaces the index snapshot of `dir` with `bytes`, durably and atomically.
pub fn write(dir: &Path, bytes: &[u8]) -> Result<()> {
    install(
        dir,
        SNAPSHOT_FILE,
        SNAPSHOT_TMP,
        bytes,
        0,
        "write index snapshot",
    )
    .map(drop)
}

/// Removes the index snapshot of `dir`, durably.
pub fn remove(dir: &Path) -> Result<()> {
    let path = dir.join(SNAPSHOT_FILE);
    crate::fs::remove_file(&path).map_err(|e| Error::io("remove index snapshot", &path, e))?;
    crate::fs::sync_dir(dir)
}

/// Maps the index snapshot of `dir`; `Ok(None)` if there is none.
pub fn map(dir: &Path) -> Result<Option<Mmap>> {
    let path = dir.join(SNAPSHOT_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("open index snapshot", &path, e)),
    };
    // SAFETY: the map is read-only, and annals never changes an index snapshot once it is in
    // place: a new one is written whole under another name and renamed over it, which leaves
    // this file (and the map) as it was; the directory lock keeps other annals processes out.
    // Another program that rewrites the file of an open store breaks this; the crate docs say
    // so.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io("map index snapshot", &path, e))?;
    Ok(Some(map))
}
