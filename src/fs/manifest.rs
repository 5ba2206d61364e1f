//! The manifest: a small file naming the tail segment (so that opening notices a segment file
//! that is gone instead of reading a shorter log) and recording a clean close. Layout and
//! rules in [`crate::format`] ("Manifest").

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::Manifest;
use crate::fs::dir::{MANIFEST_FILE, MANIFEST_TMP};
use crate::fs::install;

/// The manifest of the store in `dir`, `None` if there is none.
pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>> {
    let path = dir.join(MANIFEST_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => Manifest::decode(&bytes)
            .map(Some)
            .map_err(|reason| Error::corrupt(&path, 0, reason)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read manifest", &path, e)),
    }
}

/// Durably replaces the manifest of the store in `dir`.
pub(crate) fn write(dir: &Path, manifest: &Manifest) -> Result<()> {
    let bytes = manifest.encode();
    install(
        dir,
        MANIFEST_FILE,
        MANIFEST_TMP,
        &bytes,
        0,
        "write manifest",
    )
    .map(drop)
}
