//! The model behind `tests/model.rs` and the `api_ops` fuzz target: operations on a store
//! (appends with expected versions and ids, reads, close/reopen, torn tails) checked one by
//! one against a plain in-memory log. Self-contained so that the fuzz crate can include it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use annals::{Error, EventData, ExpectedVersion, Options, Store};

/// The last segment file of the store in `dir`.
fn last_segment(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files.pop().unwrap()
}

#[derive(Debug, Clone)]
pub enum Op {
    Append {
        stream: u8,
        count: u8,
        /// Ids `id_base..id_base + count`, or no ids.
        id_base: Option<u8>,
        expected: Expect,
    },
    ReadStream {
        stream: u8,
        from: u8,
    },
    ReadStreamBackward {
        stream: u8,
        from: Option<u8>,
    },
    ReadAll {
        from: u16,
    },
    Reopen,
    /// Garbage after the last complete frame (a torn write), then a reopen.
    TornTail {
        bytes: u8,
    },
}

#[derive(Debug, Clone, Copy)]
pub enum Expect {
    Any,
    NoStream,
    StreamExists,
    /// The stream's actual last version plus this offset (−1, 0 or +1).
    Near(i8),
}

/// One event as the model keeps it.
#[derive(Debug, Clone, PartialEq)]
struct Ev {
    stream: String,
    version: u64,
    id: Option<u128>,
    payload: Vec<u8>,
}

#[derive(Default)]
struct Model {
    log: Vec<Ev>,
}

impl Model {
    fn last_version(&self, stream: &str) -> Option<u64> {
        self.log
            .iter()
            .rev()
            .find(|e| e.stream == stream)
            .map(|e| e.version)
    }

    fn held(&self, stream: &str, id: u128) -> Option<(u64, u64)> {
        self.log
            .iter()
            .enumerate()
            .find(|(_, e)| e.stream == stream && e.id == Some(id))
            .map(|(p, e)| (p as u64, e.version))
    }
}

fn check_stream(store: &Store, model: &Model, stream: &str, from: u64) {
    let got: Vec<(u64, Vec<u8>)> = store
        .read_stream(stream, from)
        .map(|e| e.map(|e| (e.version(), e.payload().to_vec())).unwrap())
        .collect();
    let want: Vec<(u64, Vec<u8>)> = model
        .log
        .iter()
        .filter(|e| e.stream == stream && e.version >= from)
        .map(|e| (e.version, e.payload.clone()))
        .collect();
    assert_eq!(got, want, "read_stream({stream}, {from})");
}

pub fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().segment_size(annals::MIN_SEGMENT_SIZE);
    let mut store = Store::open_with(dir.path(), options.clone()).unwrap();
    let mut model = Model::default();
    let mut payload_counter = 0u64;
    for op in ops {
        match op {
            Op::Append {
                stream,
                count,
                id_base,
                expected,
            } => {
                let stream = format!("s-{stream}");
                let last = model.last_version(&stream);
                let expected = match expected {
                    Expect::Any => ExpectedVersion::Any,
                    Expect::NoStream => ExpectedVersion::NoStream,
                    Expect::StreamExists => ExpectedVersion::StreamExists,
                    Expect::Near(d) => ExpectedVersion::Exact(
                        last.unwrap_or(0).saturating_add_signed(i64::from(d)),
                    ),
                };
                let events: Vec<Ev> = (0..u64::from(count))
                    .map(|i| {
                        payload_counter += 1;
                        Ev {
                            stream: stream.clone(),
                            version: 0,
                            id: id_base.map(|b| u128::from(b) + u128::from(i)),
                            payload: payload_counter
                                .to_le_bytes()
                                .repeat(1 + (payload_counter % 40) as usize),
                        }
                    })
                    .collect();
                let data = events.iter().map(|e| {
                    let d = EventData::new("E", e.payload.clone());
                    match e.id {
                        Some(id) => d.id(id),
                        None => d,
                    }
                });
                let result = store.append(&stream, expected, data);
                // What the model says.
                let held: Vec<Option<(u64, u64)>> = events
                    .iter()
                    .map(|e| e.id.and_then(|id| model.held(&stream, id)))
                    .collect();
                let n_held = held.iter().filter(|h| h.is_some()).count();
                if n_held == events.len() {
                    let versions: Vec<u64> = held.iter().map(|h| h.unwrap().1).collect();
                    if versions.windows(2).all(|w| w[1] == w[0] + 1) {
                        let r = result.expect("full duplicate");
                        assert!(r.deduplicated);
                        assert_eq!((r.first_position, r.first_version), held[0].unwrap());
                        continue;
                    }
                }
                if n_held > 0 {
                    assert!(
                        matches!(result, Err(Error::DuplicateEvent { .. })),
                        "{result:?}"
                    );
                    continue;
                }
                if !expected.is_satisfied_by(last) {
                    assert!(
                        matches!(result, Err(Error::WrongExpectedVersion { actual, .. }) if actual == last),
                        "{result:?}"
                    );
                    continue;
                }
                let r = result.expect("append");
                assert!(!r.deduplicated);
                assert_eq!(r.first_position, model.log.len() as u64);
                assert_eq!(r.first_version, last.map_or(0, |v| v + 1));
                for (i, mut e) in (0u64..).zip(events) {
                    e.version = r.first_version + i;
                    model.log.push(e);
                }
            }
            Op::ReadStream { stream, from } => {
                check_stream(&store, &model, &format!("s-{stream}"), u64::from(from))
            }
            Op::ReadStreamBackward { stream, from } => {
                let stream = format!("s-{stream}");
                let got: Vec<u64> = store
                    .read_stream_backward(&stream, from.map(u64::from))
                    .map(|e| e.unwrap().version())
                    .collect();
                let top = match (model.last_version(&stream), from) {
                    (None, _) => None,
                    (Some(last), f) => Some(f.map_or(last, |f| u64::from(f).min(last))),
                };
                let want: Vec<u64> = top.map(|t| (0..=t).rev().collect()).unwrap_or_default();
                assert_eq!(got, want);
            }
            Op::ReadAll { from } => {
                let got: Vec<Vec<u8>> = store
                    .read_all(u64::from(from))
                    .map(|e| e.unwrap().payload().to_vec())
                    .collect();
                let want: Vec<Vec<u8>> = model
                    .log
                    .iter()
                    .skip(usize::from(from))
                    .map(|e| e.payload.clone())
                    .collect();
                assert_eq!(got, want);
            }
            Op::Reopen => {
                drop(store);
                store = Store::open_with(dir.path(), options.clone()).unwrap();
                assert_eq!(store.open_report().cut, None);
            }
            Op::TornTail { bytes } => {
                drop(store);
                let tail = last_segment(dir.path());
                let mut file = std::fs::read(&tail).unwrap();
                let mut end = annals::format::SEGMENT_HEADER_LEN;
                while let Ok(frame) = annals::format::read_frame(&file[end..]) {
                    end += frame.bytes.len();
                }
                let garbage_end = (end + usize::from(bytes)).min(file.len());
                file[end..garbage_end].fill(0xA5);
                std::fs::write(&tail, &file).unwrap();
                store = Store::open_with(dir.path(), options.clone()).unwrap();
                let cut = store.open_report().cut.is_some();
                assert_eq!(cut, garbage_end > end, "the garbage was not cut");
            }
        }
        assert_eq!(store.next_position(), model.log.len() as u64);
    }
    // A last reopen, and everything still matches.
    drop(store);
    let store = Store::open_with(dir.path(), options).unwrap();
    let all: Vec<Ev> = store
        .read_all(0)
        .map(|e| {
            let e = e.unwrap();
            Ev {
                stream: e.stream().to_string(),
                version: e.version(),
                id: e.id(),
                payload: e.payload().to_vec(),
            }
        })
        .collect();
    assert_eq!(all, model.log);
    let streams: HashMap<&str, ()> = model.log.iter().map(|e| (e.stream.as_str(), ())).collect();
    for stream in streams.keys() {
        check_stream(&store, &model, stream, 0);
    }
}
