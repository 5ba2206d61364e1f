//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod child;
pub mod executor;
mod files;
pub mod model;
mod rng;

#[allow(unused_imports)]
pub use files::segment_files;
#[allow(unused_imports)]
pub use rng::Rng;

use std::path::Path;

use annals::format::{read_frame, SEGMENT_HEADER_LEN};
use annals::{EventData, Options, RecordedEvent, Store};

/// Options with the smallest segments, so a few hundred events span many segments.
pub fn small_segments() -> Options {
    Options::default().segment_size(annals::MIN_SEGMENT_SIZE)
}

/// A payload that says which event it is, of a length that varies with `n`.
pub fn payload(stream: &str, n: u64) -> Vec<u8> {
    let mut p = format!("{stream}/{n}/").into_bytes();
    let len = 50 + (n * 37 % 900) as usize;
    p.extend((0..len).map(|i| (i as u64 ^ n.wrapping_mul(31)) as u8));
    p
}

/// The `n`-th event of the tests: every field set, all derived from `n`.
pub fn event(stream: &str, n: u64) -> EventData {
    EventData::new(format!("Type{}", n % 5), payload(stream, n))
        .id(u128::from(n) << 64 | 0xfeed)
        .metadata(format!("meta-{n}").into_bytes())
        .timestamp(1_700_000_000_000_000 + n)
}

/// Checks that `ev` is exactly `event(stream, n)` at `position` and `version`.
pub fn assert_event(ev: &RecordedEvent, stream: &str, n: u64, position: u64, version: u64) {
    assert_eq!(ev.position(), position, "position of {ev:?}");
    assert_eq!(ev.version(), version, "version of {ev:?}");
    assert_eq!(ev.stream(), stream);
    assert_eq!(ev.event_type(), format!("Type{}", n % 5));
    assert_eq!(ev.payload(), payload(stream, n).as_slice());
    assert_eq!(ev.metadata(), format!("meta-{n}").as_bytes());
    assert_eq!(ev.id(), Some(u128::from(n) << 64 | 0xfeed));
    assert_eq!(ev.timestamp(), 1_700_000_000_000_000 + n);
}

/// Every event of the store, panicking on a read error.
pub fn read_everything(store: &Store) -> Vec<RecordedEvent> {
    store
        .read_all(0)
        .collect::<annals::Result<Vec<_>>>()
        .expect("read_all")
}

/// A frame found in a segment file: its offset, length, first position and event count.
#[derive(Debug, Clone, Copy)]
pub struct FrameAt {
    pub offset: usize,
    pub len: usize,
    pub first_position: u64,
    pub count: u32,
    pub durable: u64,
}

/// The intact frames of a segment file, from its header to the first one that does not read.
pub fn frames(path: &Path) -> Vec<FrameAt> {
    let bytes = std::fs::read(path).expect("read segment");
    let mut offset = SEGMENT_HEADER_LEN;
    let mut out = Vec::new();
    while let Ok(frame) = read_frame(&bytes[offset..]) {
        out.push(FrameAt {
            offset,
            len: frame.bytes.len(),
            first_position: frame.header.first_position,
            count: frame.header.count,
            durable: frame.header.durable,
        });
        offset += frame.bytes.len();
    }
    out
}

/// Copies the files of the open store in `src` into `dst` (created if missing), skipping its
/// lock: the directory as a process killed at this moment would leave it (what it wrote is in
/// the page cache, so it reads as written), without the clean close that dropping the store
/// records. Copies `checkpoints/` too.
pub fn crash_copy(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).expect("create copy");
    for entry in std::fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name();
        if name == "LOCK" {
            continue;
        }
        if entry.file_type().expect("file type").is_dir() {
            crash_copy(&entry.path(), &dst.join(&name));
        } else {
            std::fs::copy(entry.path(), dst.join(&name)).expect("copy file");
        }
    }
}

/// Overwrites bytes of a file at `offset`.
pub fn overwrite(path: &Path, offset: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open for damage");
    f.write_all_at(bytes, offset as u64).expect("damage");
    f.sync_all().expect("sync damage");
}
