//! Recording what a workload does to the files of a store, for the crash-state tests: every
//! operation of [`crate::fs`] on a path under a recorded directory is appended, in the order
//! the calls were made, to that directory's trace. Writes are recorded before they are made
//! and syncs after they return, so a sync in the trace covers every write before it.

use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// One operation on the files of a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// A file was created empty (or truncated to zero).
    Create(PathBuf),
    /// `bytes` were written at `offset`.
    Write {
        path: PathBuf,
        offset: u64,
        bytes: Vec<u8>,
    },
    /// The file's length was set.
    SetLen { path: PathBuf, len: u64 },
    /// `fsync`/`fdatasync` of the file returned.
    Sync(PathBuf),
    /// `from` was renamed to `to`.
    Rename { from: PathBuf, to: PathBuf },
    /// The file was removed.
    Remove(PathBuf),
    /// The directory's entries were synced.
    SyncDir(PathBuf),
    /// A label the test put in the trace (an acknowledged append, say).
    Mark(String),
}

impl Op {
    fn path(&self) -> &Path {
        match self {
            Op::Create(p) | Op::Sync(p) | Op::Remove(p) | Op::SyncDir(p) => p,
            Op::Write { path, .. } | Op::SetLen { path, .. } => path,
            Op::Rename { from, .. } => from,
            Op::Mark(_) => Path::new(""),
        }
    }
}

/// The directories being recorded and their traces.
static TRACES: Mutex<Vec<(PathBuf, Vec<Op>)>> = Mutex::new(Vec::new());

/// Starts recording the operations on `dir` and every path under it.
pub(crate) fn start(dir: &Path) {
    TRACES.lock().push((dir.to_path_buf(), Vec::new()));
}

/// Stops recording `dir` and returns its trace.
pub(crate) fn stop(dir: &Path) -> Vec<Op> {
    let mut traces = TRACES.lock();
    match traces.iter().position(|(d, _)| d == dir) {
        Some(i) => traces.swap_remove(i).1,
        None => Vec::new(),
    }
}

/// Appends a test's label to the trace of `dir`.
pub(crate) fn mark(dir: &Path, label: impl Into<String>) {
    let label = label.into();
    for (d, ops) in TRACES.lock().iter_mut() {
        if d == dir {
            ops.push(Op::Mark(label.clone()));
        }
    }
}

/// Appends `op` to the trace of every recorded directory it falls under.
pub(crate) fn record(op: Op) {
    let mut traces = TRACES.lock();
    for (dir, ops) in traces.iter_mut() {
        if op.path().starts_with(dir.as_path()) {
            ops.push(op.clone());
        }
    }
}
