//! Opening a store whose segment and index files are damaged in arbitrary ways, then reading
//! everything: `Ok` or `Err`, never a panic, a hang, or an allocation sized by an unchecked
//! length field.
//!
//! The input is a list of 6-byte patches `[file, offset (u32 LE), xor]` applied to a small
//! valid store (three segments with their index side files, the index snapshot and the
//! manifest); a final odd
//! byte, if any, cuts the file it names to a length derived from it. An input of odd length
//! opens the store as a crash leaves it (the manifest without its clean-close record), so that
//! recovery looks past the end of the tail.
#![no_main]

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::OnceLock;

use annals::{EventData, ExpectedVersion, Options, Store};
use libfuzzer_sys::fuzz_target;

fn options() -> Options {
    Options::default().segment_size(annals::MIN_SEGMENT_SIZE)
}

/// The files of the template store, by name.
fn template() -> &'static Vec<(String, Vec<u8>)> {
    static TEMPLATE: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_with(dir.path(), options()).expect("open");
        for n in 0..400u64 {
            let stream = format!("s-{}", n % 4);
            let event = EventData::new("E", vec![n as u8; 150 + (n % 50) as usize]).id(u128::from(n));
            store.append(&stream, ExpectedVersion::Any, [event]).expect("append");
        }
        store.save_checkpoint("c", 7).expect("checkpoint");
        drop(store);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .map(|p: PathBuf| {
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let bytes = std::fs::read(&p).expect("read");
                (name, bytes)
            })
            .filter(|(name, _)| {
                name.ends_with(".log")
                    || name.ends_with(".idx")
                    || name == "MANIFEST"
                    || name == "INDEX"
            })
            .collect();
        files.sort();
        files
    })
}

/// The manifest bytes without the clean-close record.
fn crashed(manifest: &[u8]) -> Vec<u8> {
    let mut m = annals::format::Manifest::decode(manifest).expect("template manifest");
    m.closed = None;
    m.encode().to_vec()
}

fuzz_target!(|data: &[u8]| {
    let mut files = template().clone();
    if data.len() % 2 == 1 {
        for (name, bytes) in &mut files {
            if name == "MANIFEST" {
                *bytes = crashed(bytes);
            }
        }
    }
    let mut patches = data.chunks_exact(6);
    for p in &mut patches {
        let f = usize::from(p[0]) % files.len();
        let bytes = &mut files[f].1;
        let offset = u32::from_le_bytes([p[1], p[2], p[3], p[4]]) as usize % bytes.len().max(1);
        if let Some(b) = bytes.get_mut(offset) {
            *b ^= p[5];
        }
    }
    if let [f, cut, ..] = patches.remainder() {
        let f = usize::from(*f) % files.len();
        let len = files[f].1.len();
        files[f].1.truncate(len * usize::from(*cut) / 256);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, bytes) in &files {
        std::fs::write(dir.path().join(name), bytes).expect("write");
    }
    let Ok(store) = Store::open_with(dir.path(), options()) else {
        return;
    };
    for event in store.read_all(0) {
        if event.is_err() {
            break;
        }
    }
    let _ = store.scan_all(0, |_| ControlFlow::Continue(()));
    for k in 0..4 {
        let stream = format!("s-{k}");
        for event in store.read_stream(&stream, 0) {
            if event.is_err() {
                break;
            }
        }
        for event in store.read_stream_backward(&stream, None) {
            if event.is_err() {
                break;
            }
        }
        let _ = store.stream_version(&stream);
    }
    let _ = store.append("s-1", ExpectedVersion::Any, [EventData::new("E", vec![1]).id(3)]);
});
