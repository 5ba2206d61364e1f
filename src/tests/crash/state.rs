//! The states a crash leaves on disk, as [`super::model::Model::crash`] builds them: the
//! page versions they are made of ([`PAGE`], [`SECTOR`]), pages whole or torn at a sector,
//! files, and [`CrashState`] with its files by path, which can be written into a directory,
//! read back file by file, fingerprinted to tell distinct states apart, and displayed in a
//! line per file.

use std::collections::hash_map::DefaultHasher;
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bytes in a page: the unit a crash keeps or loses.
pub(crate) const PAGE: usize = 4096;
/// Bytes in a sector: the unit a torn page is torn at.
pub(crate) const SECTOR: usize = 512;

/// One version of a page's bytes, numbered so that states can be compared cheaply.
#[derive(Debug)]
pub(super) struct Version {
    pub(super) id: u64,
    pub(super) bytes: Box<[u8]>,
}

/// A page's bytes; `None` reads as zeros.
pub(super) type Page = Option<Arc<Version>>;

/// The number of a page version, 0 for a page of zeros.
fn version_id(page: &Page) -> u64 {
    page.as_ref().map_or(0, |v| v.id)
}

/// Which version of a changed page a crash state holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Pick {
    /// The version as of the last sync.
    Synced,
    /// The version after the latest change.
    Latest,
    /// The version after an earlier change since the sync.
    Older,
}

/// A page of a crash state: the first `sectors` sectors of `new`, the rest of `old`.
#[derive(Debug, Clone)]
pub(super) struct PageImage {
    new: Page,
    pub(super) old: Page,
    /// How many sectors come from `new`: `PAGE / SECTOR` for a whole page.
    pub(super) sectors: usize,
    pick: Pick,
}

impl PageImage {
    pub(super) fn whole(page: Page, pick: Pick) -> Self {
        PageImage {
            new: page,
            old: None,
            sectors: PAGE / SECTOR,
            pick,
        }
    }

    fn is_torn(&self) -> bool {
        self.sectors < PAGE / SECTOR
    }

    /// The page's bytes, `None` if all zeros.
    pub(super) fn bytes(&self) -> Option<Vec<u8>> {
        let split = self.sectors * SECTOR;
        let new = self.new.as_ref().map(|v| &v.bytes[..split]);
        let old = self.old.as_ref().filter(|_| self.is_torn());
        if new.is_none() && old.is_none() {
            return None;
        }
        let mut page = vec![0u8; PAGE];
        if let Some(old) = old {
            page[split..].copy_from_slice(&old.bytes[split..]);
        }
        if let Some(new) = new {
            page[..split].copy_from_slice(new);
        }
        Some(page)
    }
}

/// A file of a crash state.
#[derive(Debug)]
pub(super) struct FileImage {
    pub(super) len: u64,
    pub(super) pages: BTreeMap<u64, PageImage>,
}

/// The files a crash leaves, by path relative to the store directory.
#[derive(Debug, Clone)]
pub(crate) struct CrashState {
    pub(super) files: BTreeMap<PathBuf, Arc<FileImage>>,
}

impl CrashState {
    /// A hash of the state: equal for states with the same files and bytes (made of the same
    /// page versions).
    pub(crate) fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        for (path, file) in &self.files {
            (path, file.len).hash(&mut h);
            for (index, page) in &file.pages {
                let old = if page.is_torn() {
                    version_id(&page.old)
                } else {
                    0
                };
                (index, version_id(&page.new), old, page.sectors).hash(&mut h);
            }
        }
        h.finish()
    }

    /// The paths of the state's files, relative to the store directory.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.keys().map(PathBuf::as_path)
    }

    /// Writes the state's files into the empty directory `dir`.
    pub(crate) fn write_to(&self, dir: &Path) -> std::io::Result<()> {
        for (rel, image) in &self.files {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            let file = File::create(&path)?;
            for (index, page) in &image.pages {
                if let Some(bytes) = page.bytes() {
                    file.write_all_at(&bytes, index * PAGE as u64)?;
                }
            }
            file.set_len(image.len)?;
        }
        Ok(())
    }

    /// The bytes of file `rel`, `None` if the state has no such file.
    pub(crate) fn read(&self, rel: &str) -> Option<Vec<u8>> {
        let image = self.files.get(Path::new(rel))?;
        let mut bytes = vec![0u8; image.len as usize];
        for (&index, page) in &image.pages {
            if let Some(page_bytes) = page.bytes() {
                let start = index as usize * PAGE;
                let end = (start + PAGE).min(bytes.len());
                bytes[start..end].copy_from_slice(&page_bytes[..end - start]);
            }
        }
        Some(bytes)
    }
}

impl fmt::Display for CrashState {
    /// Each file with its length, and each page that does not hold its latest version whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, file) in &self.files {
            let mut pages = String::new();
            for (index, page) in &file.pages {
                match (page.pick, page.is_torn()) {
                    (Pick::Latest, false) => continue,
                    (Pick::Synced, _) => write!(pages, " {index}:synced")?,
                    (pick, false) => write!(pages, " {index}:{pick:?}")?,
                    (pick, true) => write!(pages, " {index}:{pick:?}-torn@{}", page.sectors)?,
                }
            }
            writeln!(f, "  {} ({} bytes){pages}", path.display(), file.len)?;
        }
        Ok(())
    }
}
