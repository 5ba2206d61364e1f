//! A model file system that turns a recorded trace of file operations ([`crate::fs::trace`])
//! into the states a crash could leave on disk, in the spirit of ALICE (OSDI '14) and
//! CrashMonkey (OSDI '18).
//!
//! [`Model`] replays the operations one at a time and keeps, for every file (inode), what
//! reads see now, what is on stable storage (its content as of its last `Sync`), and every
//! version each 4 KiB page has had since that sync; for every directory, its entries now,
//! its entries as of its last `SyncDir`, and the entry operations (create, rename, remove)
//! made since, in order.
//!
//! [`Model::crash`] builds one state that a crash right after the operations replayed so far
//! may leave, as chosen by a [`Variant`] and a random generator:
//!
//! - each directory holds its entries as of its last `SyncDir`, plus a prefix (none, some or
//!   all) of the entry operations made in it since, applied in order;
//! - each file holds its content as of its last `Sync` (empty if never synced), and then, for
//!   each page changed since, independently: the synced version, or the version after one of
//!   the changes (usually the latest), or a torn page: the first `512 * m` bytes (`m` in
//!   `1..8`) of such a version and the rest from the synced version. The file's length is
//!   its length now; bytes never written read as zero.
//!
//! The model is deliberately simple: no reordering of a file's length against its data
//! beyond that, no lost directory creation (`checkpoints/` exists whenever a file in it
//! does), and no cross-directory renames (the store never makes one).
//!
//! The states themselves (pages, files, writing and fingerprinting them) are in
//! [`super::state`]; the model's unit tests in `super::model_tests`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::trace::Op;
use crate::tests::rng::Rng;

use super::state::{CrashState, FileImage, Page, PageImage, Pick, Version, PAGE, SECTOR};

/// A file's bytes: its length and its pages (a missing page reads as zeros). Bytes past the
/// length are always zero.
#[derive(Debug, Clone, Default)]
struct Content {
    len: u64,
    pages: BTreeMap<u64, Arc<Version>>,
}

impl Content {
    fn page(&self, index: u64) -> Page {
        self.pages.get(&index).cloned()
    }
}

/// A file: what reads see now, what a crash keeps for sure, and what it may keep.
#[derive(Debug, Default)]
struct Inode {
    /// What reads see now.
    current: Content,
    /// The content as of the last sync.
    synced: Content,
    /// Pages changed since the last sync, with their version after each change, oldest first.
    pending: BTreeMap<u64, Vec<Page>>,
}

impl Inode {
    /// Replaces page `index` by `page` (a change since the last sync).
    fn set_page(&mut self, index: u64, page: Page) {
        match &page {
            Some(v) => self.current.pages.insert(index, Arc::clone(v)),
            None => self.current.pages.remove(&index),
        };
        self.pending.entry(index).or_default().push(page);
    }

    /// Writes `bytes` at `offset`; `ids` numbers the new page versions.
    fn write(&mut self, offset: u64, bytes: &[u8], ids: &mut u64) {
        let end = offset + bytes.len() as u64;
        let mut at = offset;
        while at < end {
            let index = at / PAGE as u64;
            let in_page = (at % PAGE as u64) as usize;
            let n = (PAGE - in_page).min((end - at) as usize);
            let mut page = self
                .current
                .page(index)
                .map_or_else(|| vec![0u8; PAGE].into_boxed_slice(), |v| v.bytes.clone());
            let from = (at - offset) as usize;
            page[in_page..in_page + n].copy_from_slice(&bytes[from..from + n]);
            *ids += 1;
            self.set_page(
                index,
                Some(Arc::new(Version {
                    id: *ids,
                    bytes: page,
                })),
            );
            at += n as u64;
        }
        self.current.len = self.current.len.max(end);
    }

    /// Sets the length to `len`: pages past it become zeros, the page it ends in is zeroed
    /// past it. Growing changes no page (bytes past the length are zeros already).
    fn set_len(&mut self, len: u64, ids: &mut u64) {
        let cut: Vec<u64> = self
            .current
            .pages
            .range(len.div_ceil(PAGE as u64)..)
            .map(|(&index, _)| index)
            .collect();
        for index in cut {
            self.set_page(index, None);
        }
        let in_page = (len % PAGE as u64) as usize;
        if let (true, Some(v)) = (in_page > 0, self.current.page(len / PAGE as u64)) {
            if v.bytes[in_page..].iter().any(|&b| b != 0) {
                let mut page = v.bytes.clone();
                page[in_page..].fill(0);
                *ids += 1;
                let page = Some(Arc::new(Version {
                    id: *ids,
                    bytes: page,
                }));
                self.set_page(len / PAGE as u64, page);
            }
        }
        self.current.len = len;
    }

    /// `fsync` returned: everything written is on stable storage.
    fn sync(&mut self) {
        self.synced = self.current.clone();
        self.pending.clear();
    }

    /// The file as a crash may leave it.
    fn image(&self, variant: Variant, rng: &mut Rng) -> FileImage {
        // A page unchanged since the sync holds its latest version.
        let mut pages: BTreeMap<u64, PageImage> = self
            .synced
            .pages
            .iter()
            .map(|(&index, v)| (index, PageImage::whole(Some(Arc::clone(v)), Pick::Latest)))
            .collect();
        for (&index, versions) in &self.pending {
            pages.insert(
                index,
                pick_page(self.synced.page(index), versions, variant, rng),
            );
        }
        let len = self.current.len;
        pages.retain(|&index, _| index * (PAGE as u64) < len);
        FileImage { len, pages }
    }
}

/// Chooses what a crash leaves of a page changed since its last sync (`synced`); `versions`
/// are its versions after each change, oldest first.
fn pick_page(synced: Page, versions: &[Page], variant: Variant, rng: &mut Rng) -> PageImage {
    let latest = versions.last().cloned().flatten();
    match variant {
        Variant::Latest => return PageImage::whole(latest, Pick::Latest),
        Variant::Synced => return PageImage::whole(synced, Pick::Synced),
        Variant::Random | Variant::Torn => {}
    }
    let (page, pick) = match rng.below(8) {
        0 | 1 => return PageImage::whole(synced, Pick::Synced),
        2 if versions.len() > 1 => {
            let i = rng.below(versions.len() as u64 - 1) as usize;
            (versions[i].clone(), Pick::Older)
        }
        _ => (latest, Pick::Latest),
    };
    let mut image = PageImage::whole(page, pick);
    if variant == Variant::Torn && rng.below(2) == 0 {
        image.sectors = 1 + rng.below((PAGE / SECTOR) as u64 - 1) as usize;
        image.old = synced;
    }
    image
}

/// A change to a directory's entries.
#[derive(Debug, Clone)]
enum DirOp {
    /// A new name for a new file.
    Link(String, usize),
    /// A name removed.
    Unlink(String),
    /// A name moved to another one, replacing it.
    Rename { from: String, to: String },
}

impl DirOp {
    fn apply(&self, names: &mut BTreeMap<String, usize>) {
        match self {
            DirOp::Link(name, inode) => {
                names.insert(name.clone(), *inode);
            }
            DirOp::Unlink(name) => {
                names.remove(name);
            }
            DirOp::Rename { from, to } => {
                if let Some(inode) = names.remove(from) {
                    names.insert(to.clone(), inode);
                }
            }
        }
    }
}

/// A directory: its entries now, as of its last sync, and the changes since.
#[derive(Debug, Default)]
struct Dir {
    current: BTreeMap<String, usize>,
    durable: BTreeMap<String, usize>,
    pending: Vec<DirOp>,
}

impl Dir {
    fn change(&mut self, op: DirOp) {
        op.apply(&mut self.current);
        self.pending.push(op);
    }
}

/// How a crash state is chosen among those the model allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Variant {
    /// Everything made it: every directory change, the latest version of every page.
    Latest,
    /// Only what was synced: no directory change since a directory's last sync, the synced
    /// version of every page.
    Synced,
    /// A random prefix of each directory's changes, a random version of each page.
    Random,
    /// As `Random`, and about half of the pages that changed are torn at a sector boundary.
    Torn,
}

/// The file system a trace describes, replayed up to some operation.
#[derive(Debug)]
pub(crate) struct Model {
    /// The recorded directory; every path in the trace is under it.
    root: PathBuf,
    inodes: Vec<Inode>,
    /// Directories by path relative to `root` (`""` for `root` itself).
    dirs: BTreeMap<PathBuf, Dir>,
    /// Number of the last page version made.
    versions: u64,
}

impl Model {
    /// An empty directory `root`.
    pub(crate) fn new(root: &Path) -> Self {
        Model {
            root: root.to_path_buf(),
            inodes: Vec::new(),
            dirs: BTreeMap::new(),
            versions: 0,
        }
    }

    /// The directory `root` holding the files of `state`, all of them on stable storage (a
    /// crash state that a workload then starts from).
    pub(crate) fn from_state(root: &Path, state: &CrashState) -> Self {
        let mut model = Model::new(root);
        for (rel, image) in &state.files {
            let mut content = Content {
                len: image.len,
                pages: BTreeMap::new(),
            };
            for (&index, page) in &image.pages {
                let Some(mut bytes) = page.bytes() else {
                    continue;
                };
                // Bytes past the length read as zeros.
                let end = image
                    .len
                    .saturating_sub(index * PAGE as u64)
                    .min(PAGE as u64);
                bytes[end as usize..].fill(0);
                model.versions += 1;
                let version = Version {
                    id: model.versions,
                    bytes: bytes.into_boxed_slice(),
                };
                content.pages.insert(index, Arc::new(version));
            }
            model.inodes.push(Inode {
                synced: content.clone(),
                current: content,
                pending: BTreeMap::new(),
            });
            let inode = model.inodes.len() - 1;
            let (dir, name) = model.split(&root.join(rel));
            let dir = model.dir(dir);
            dir.current.insert(name.clone(), inode);
            dir.durable.insert(name, inode);
        }
        model
    }

    /// Replays one operation.
    pub(crate) fn apply(&mut self, op: &Op) {
        match op {
            Op::Create(path) => self.create(path),
            Op::Write {
                path,
                offset,
                bytes,
            } => {
                let inode = self.resolve(path, op);
                self.inodes[inode].write(*offset, bytes, &mut self.versions);
            }
            Op::SetLen { path, len } => {
                let inode = self.resolve(path, op);
                self.inodes[inode].set_len(*len, &mut self.versions);
            }
            Op::Sync(path) => {
                let inode = self.resolve(path, op);
                self.inodes[inode].sync();
            }
            Op::Rename { from, to } => {
                let (dir, from_name) = self.split(from);
                let (to_dir, to_name) = self.split(to);
                assert_eq!(dir, to_dir, "cross-directory rename in the trace: {op:?}");
                self.resolve(from, op);
                self.dir(dir).change(DirOp::Rename {
                    from: from_name,
                    to: to_name,
                });
            }
            Op::Remove(path) => {
                let (dir, name) = self.split(path);
                self.resolve(path, op);
                self.dir(dir).change(DirOp::Unlink(name));
            }
            Op::SyncDir(path) => {
                let dir = self.relative(path);
                let dir = self.dir(dir);
                dir.durable = dir.current.clone();
                dir.pending.clear();
            }
            Op::Mark(_) => {}
        }
    }

    /// Creates `path`, or truncates it if it exists.
    fn create(&mut self, path: &Path) {
        let (dir, name) = self.split(path);
        if let Some(&inode) = self.dir(dir.clone()).current.get(&name) {
            self.inodes[inode].set_len(0, &mut self.versions);
            return;
        }
        self.inodes.push(Inode::default());
        let inode = self.inodes.len() - 1;
        self.dir(dir).change(DirOp::Link(name, inode));
    }

    /// The inode that `path` names now; panics if none (the trace and the model disagree).
    fn resolve(&mut self, path: &Path, op: &Op) -> usize {
        let (dir, name) = self.split(path);
        match self.dir(dir).current.get(&name) {
            Some(&inode) => inode,
            None => panic!("{op:?} names a file that does not exist in the model"),
        }
    }

    fn relative(&self, path: &Path) -> PathBuf {
        match path.strip_prefix(&self.root) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => panic!("{} is not under {}", path.display(), self.root.display()),
        }
    }

    /// The directory (relative to the root) and the name of `path`.
    fn split(&self, path: &Path) -> (PathBuf, String) {
        let rel = self.relative(path);
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_else(|| panic!("no file name in {}", path.display()))
            .to_string();
        let dir = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        (dir, name)
    }

    fn dir(&mut self, rel: PathBuf) -> &mut Dir {
        self.dirs.entry(rel).or_default()
    }

    /// Whether a crash now could leave anything but what was synced: a page or a directory
    /// entry changed since its last sync.
    pub(crate) fn has_pending(&self) -> bool {
        self.inodes.iter().any(|i| !i.pending.is_empty())
            || self.dirs.values().any(|d| !d.pending.is_empty())
    }

    /// One state that a crash right after the operations replayed so far may leave.
    pub(crate) fn crash(&self, variant: Variant, rng: &mut Rng) -> CrashState {
        let mut images: HashMap<usize, Arc<FileImage>> = HashMap::new();
        let mut files = BTreeMap::new();
        for (rel, dir) in &self.dirs {
            let applied = match variant {
                Variant::Latest => dir.pending.len(),
                Variant::Synced => 0,
                Variant::Random | Variant::Torn => rng.below(dir.pending.len() as u64 + 1) as usize,
            };
            let mut names = dir.durable.clone();
            for op in &dir.pending[..applied] {
                op.apply(&mut names);
            }
            for (name, inode) in names {
                let image = images
                    .entry(inode)
                    .or_insert_with(|| Arc::new(self.inodes[inode].image(variant, rng)));
                files.insert(rel.join(name), Arc::clone(image));
            }
        }
        CrashState { files }
    }
}
