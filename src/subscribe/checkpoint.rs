//! Durable consumer checkpoints: one small file per consumer under `checkpoints/` in the
//! store directory (layout in [`crate::format::checkpoint`]). Saving one is atomic and durable: written
//! under a temporary name no checkpoint can have (`.{name}.tmp`), synced, renamed into place,
//! directory synced.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::format::{decode_checkpoint, encode_checkpoint};
use crate::fs::{install, sync_dir};

/// Subdirectory of the store that holds checkpoints.
const DIR: &str = "checkpoints";
const MAX_NAME: usize = 128;

/// Checks a checkpoint name: 1 to 128 of `A-Z a-z 0-9 _ - .`, not starting with a dot (so
/// that it is a plain file name on every system).
fn check_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if name.is_empty()
        || name.len() > MAX_NAME
        || name.starts_with('.')
        || !name.chars().all(ok_char)
    {
        return Err(Error::InvalidInput(format!(
            "checkpoint name {name:?} must have 1 to {MAX_NAME} of A-Z a-z 0-9 _ - . and not \
             start with a dot"
        )));
    }
    Ok(())
}

fn decode(path: &Path, b: &[u8]) -> Result<u64> {
    decode_checkpoint(b).map_err(|(offset, reason)| Error::corrupt(path, offset, reason))
}

/// Saves `position` as checkpoint `name` of the store in `store_dir`.
pub(crate) fn save(store_dir: &Path, name: &str, position: u64) -> Result<()> {
    check_name(name)?;
    let dir = store_dir.join(DIR);
    if !dir.exists() {
        fs::create_dir_all(&dir).map_err(|e| Error::io("create checkpoints directory", &dir, e))?;
        sync_dir(store_dir)?;
    }
    let tmp = format!(".{name}.tmp");
    install(
        &dir,
        name,
        &tmp,
        &encode_checkpoint(position),
        0,
        "write checkpoint",
    )
    .map(drop)
}

/// Removes the temporary files that a crash in the middle of a save left behind.
pub(crate) fn remove_leftovers(store_dir: &Path) -> Result<()> {
    let dir = store_dir.join(DIR);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let saved = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .is_some_and(|n| check_name(n).is_ok());
        if saved && entry.file_type().is_ok_and(|t| t.is_file()) {
            let path = entry.path();
            crate::fs::remove_file(&path)
                .map_err(|e| Error::io("remove temporary checkpoint", &path, e))?;
        }
    }
    Ok(())
}

/// Checkpoint `name` of the store in `store_dir`, `None` if it was never saved.
pub(crate) fn load(store_dir: &Path, name: &str) -> Result<Option<u64>> {
    check_name(name)?;
    let path = store_dir.join(DIR).join(name);
    match fs::read(&path) {
        Ok(bytes) => decode(&path, &bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read checkpoint", &path, e)),
    }
}

/// Every checkpoint file of the store in `store_dir`, sorted by name, with its position or
/// what is wrong with it.
pub(crate) fn list(store_dir: &Path) -> Result<Vec<(String, Result<u64>)>> {
    let dir: PathBuf = store_dir.join(DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list checkpoints", &dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list checkpoints", &dir, e))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if check_name(&name).is_err() {
            continue;
        }
        match load(store_dir, &name) {
            Ok(Some(position)) => out.push((name, Ok(position))),
            Ok(None) => {} // removed since it was listed
            Err(e) => out.push((name, Err(e))),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
