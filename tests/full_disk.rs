//! A real full disk: a small tmpfs mounted for the test (root only; otherwise the test says
//! why it was skipped). Appending until the disk is full fails with an error naming the cause;
//! nothing acknowledged is lost; readers still see every acknowledged event; the store opens on
//! the full disk (keeping what it rebuilds in memory) and reads everything; once space is freed
//! it holds exactly the acknowledged events and takes appends again.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use annals::{Error, EventData, ExpectedVersion, Options, Store};

/// A tmpfs mounted on a temporary directory, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mib` MiB, or says why it cannot.
    fn mount(mib: u64) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (root needed): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Grows the file system to `mib` MiB: frees space.
    fn resize(&self, mib: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(self.path())
            .status()
            .expect("remount");
        assert!(status.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn options() -> Options {
    // Small segments: rolls, side files and the manifest all meet the full disk too.
    Options::default().segment_size(1 << 20)
}

fn payload(n: u64) -> Vec<u8> {
    let mut p = n.to_le_bytes().to_vec();
    p.resize(3000 + (n % 7) as usize * 500, n as u8);
    p
}

/// Every payload of the store, read through `read_all`.
fn stored(store: &Store) -> Vec<Vec<u8>> {
    store
        .read_all(0)
        .map(|ev| ev.expect("read").payload().to_vec())
        .collect()
}

/// Appends one event at a time (and now and then a batch from several threads) until an
/// append fails; returns the acknowledged payloads and the first error.
fn fill_until_full(store: &Store) -> (Vec<Vec<u8>>, Error) {
    let mut acked = Vec::new();
    let mut n = 0u64;
    loop {
        let events: Vec<EventData> = (n..n + 1 + n % 3)
            .map(|i| EventData::new("Filled", payload(i)))
            .collect();
        let count = events.len() as u64;
        match store.append("disk", ExpectedVersion::Any, events) {
            Ok(_) => acked.extend((n..n + count).map(payload)),
            Err(e) => return (acked, e),
        }
        n += count;
    }
}

/// Writes `path` until the file system is full.
fn take_all_space(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0xEEu8; 4096];
    while file
        .write_all(&block)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

#[test]
fn a_full_disk_loses_nothing_and_the_store_recovers_once_space_is_freed() {
    let fs = match Tmpfs::mount(16) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_loses_nothing...: {why}");
            return;
        }
    };
    let dir: PathBuf = fs.path().join("store");
    let store = Store::open_with(&dir, options()).unwrap();
    let (acked, error) = fill_until_full(&store);
    eprintln!("{} events acknowledged before: {error}", acked.len());
    assert!(acked.len() > 1000, "the disk filled early");
    let message = error.to_string();
    assert!(
        message.contains("No space left on device"),
        "the error names the cause: {message}"
    );
    // Readers still see every acknowledged event; writers are refused until a reopen.
    assert_eq!(stored(&store), acked);
    let refused = store.append("disk", ExpectedVersion::Any, [EventData::new("E", vec![1])]);
    assert!(
        matches!(refused, Err(Error::Poisoned { .. })),
        "{refused:?}"
    );
    drop(store);

    // The index snapshot and the newest side file are lost (as if their background threads
    // had not finished), and the space they held is taken: opening must rebuild the side file
    // without writing it.
    let newest_index = common::segment_files(&dir)
        .iter()
        .rev()
        .map(|segment| segment.with_extension("idx"))
        .find(|index| index.exists())
        .expect("a side file");
    std::fs::remove_file(&newest_index).unwrap();
    std::fs::remove_file(dir.join("INDEX")).unwrap();
    take_all_space(&fs.path().join("filler"));

    // Opening on the full disk works, and reads everything.
    let store = Store::open_with(&dir, options()).expect("open on a full disk");
    let report = store.open_report();
    eprintln!("open on a full disk: {report:?}");
    let rebuilt = &report.rebuilt_indexes;
    assert_eq!(rebuilt.len(), 1);
    assert_eq!(rebuilt[0].file, newest_index);
    assert!(
        rebuilt[0].reason.contains("kept in memory"),
        "{}",
        rebuilt[0].reason
    );
    assert_eq!(stored(&store), acked);
    let refused = store.append(
        "disk",
        ExpectedVersion::Any,
        [EventData::new("E", payload(0))],
    );
    assert!(refused.is_err(), "the disk is still full");
    drop(store);

    std::fs::remove_file(fs.path().join("filler")).unwrap();
    fs.resize(64);
    let store = Store::open_with(&dir, options()).unwrap();
    assert_eq!(stored(&store), acked, "exactly the acknowledged events");
    let r = store
        .append(
            "disk",
            ExpectedVersion::Any,
            [EventData::new("After", payload(1))],
        )
        .expect("appends work again");
    assert_eq!(r.first_position, acked.len() as u64);
    drop(store);
    let store = Store::open_with(&dir, options()).unwrap();
    assert_eq!(store.next_position(), acked.len() as u64 + 1);
}
