//! The events of each segment by type and by category (`{base:020}.tix`, layout in
//! [`crate::format::postings`]): written beside a sealed segment's side file, read one
//! directory and one list at a time by [`PostingsCache`], which also indexes the tail as far
//! as readers have read it (each tail event once) and builds in memory what a missing or
//! stale file would have held.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::error::{Error, Result};
use crate::format::{
    decode_postings_directory, decode_postings_header, decode_postings_list, encode_postings,
    split_location, Damage, FrameFault, PostingsHeader, RecordView, SegmentEnd, KEY_CATEGORY,
    KEY_TYPE, POSTINGS_HEADER_LEN,
};
use crate::fs::dir::{postings_file_name, postings_tmp_name};
use crate::fs::install;
use crate::fs::segment::Segment;
use crate::log::scan::{ends_at, holds_frame, walk_frames, walk_frames_between, Walked};
use crate::log::Snapshot;

/// What a read by index looks for: an event type or a category.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    kind: u8,
    name: Box<str>,
}

impl Key {
    /// The events of type `name`.
    pub fn event_type(name: &str) -> Self {
        Key {
            kind: KEY_TYPE,
            name: name.into(),
        }
    }

    /// The events of streams in category `name`.
    pub fn category(name: &str) -> Self {
        Key {
            kind: KEY_CATEGORY,
            name: name.into(),
        }
    }

    /// Whether the event `ev` is one this key names.
    pub fn matches(&self, ev: &RecordView<'_>) -> bool {
        match self.kind {
            KEY_TYPE => ev.event_type == &*self.name,
            _ => category(ev.stream) == Some(&*self.name),
        }
    }
}

/// The category of a stream: the part of its name before the first `-` (EventStoreDB's
/// convention), if there is one and it is not empty.
pub fn category(stream: &str) -> Option<&str> {
    stream
        .split_once('-')
        .map(|(c, _)| c)
        .filter(|c| !c.is_empty())
}

/// The events of one segment by key: original record offsets in position order.
#[derive(Debug, Default)]
pub struct Postings {
    lists: HashMap<Key, Vec<u32>>,
}

impl Postings {
    /// Adds the event `ev`, whose record was first written at `location`.
    fn add(&mut self, ev: &RecordView<'_>, location: u64) {
        let offset = split_location(location).1 as u32;
        let mut push = |key: Key| self.lists.entry(key).or_default().push(offset);
        push(Key::event_type(ev.event_type));
        if let Some(c) = category(ev.stream) {
            push(Key::category(c));
        }
    }

    /// The postings of the sealed `segment`, walking all of it, and its end.
    pub fn build(segment: &Segment) -> Result<(Self, SegmentEnd)> {
        let mut postings = Postings::default();
        let walked = walk_frames(segment, segment.base_position(), |ev, location| {
            postings.add(ev, location);
            Ok(())
        })?
        .sealed(segment)?;
        Ok((postings, walked.segment_end()))
    }

    /// Writes the postings of the sealed `segment` (built by [`Postings::build`]) into `dir`,
    /// durably.
    pub fn write(&self, dir: &Path, segment: &Segment, end: SegmentEnd) -> Result<()> {
        let mut lists: Vec<(&Key, &Vec<u32>)> = self.lists.iter().collect();
        lists.sort_by(|a, b| (a.0.kind, &a.0.name).cmp(&(b.0.kind, &b.0.name)));
        let lists: Vec<(u8, &str, &[u32])> = lists
            .iter()
            .map(|(k, l)| (k.kind, &*k.name, l.as_slice()))
            .collect();
        let header = PostingsHeader {
            base_position: segment.base_position(),
            seq: segment.seq(),
            end,
            keys: 0,
            directory_len: 0,
        };
        let base = segment.base_position();
        let bytes = encode_postings(&header, &lists);
        install(
            dir,
            &postings_file_name(base),
            &postings_tmp_name(base),
            &bytes,
            0,
            "write type and category index",
        )
        .map(drop)
    }
}

/// Builds and writes the type and category index of the sealed `segment`.
pub fn write_postings(dir: &Path, segment: &Segment) -> Result<()> {
    let (postings, end) = Postings::build(segment)?;
    postings.write(dir, segment, end)
}

/// One sealed segment's postings as readers find them.
#[derive(Debug)]
enum Found {
    /// The file, checked against the segment when first read, and its directory (each
    /// list's CRC checked when read: a file replaced since does not pass).
    File {
        path: PathBuf,
        directory: HashMap<Key, (u64, u32, u32)>,
    },
    /// Built in memory from the segment (the file was missing, stale or damaged).
    Built(Postings),
}

/// A sealed segment's postings, for the segment they were found for.
#[derive(Debug)]
struct Entry {
    /// The segment (a rewritten one is another; a dropped one no longer matches).
    segment: Weak<Segment>,
    found: Arc<Found>,
}

/// The tail's postings as far as readers have read it.
#[derive(Debug)]
struct Tail {
    /// The tail segment (a new map is another segment; held weakly, its address is not
    /// reused while this lives).
    segment: Weak<Segment>,
    walked: Walked,
    postings: Postings,
}

/// The postings readers have asked for, shared by every reader of a store.
#[derive(Debug)]
pub struct PostingsCache {
    dir: PathBuf,
    /// By segment number: one entry per segment, for its newest version read.
    sealed: Mutex<HashMap<u64, Entry>>,
    tail: Mutex<Option<Tail>>,
}

impl PostingsCache {
    /// An empty cache for the store in `dir`.
    pub fn new(dir: &Path) -> Self {
        PostingsCache {
            dir: dir.to_path_buf(),
            sealed: Mutex::new(HashMap::new()),
            tail: Mutex::new(None),
        }
    }

    /// The original offsets of the events with `key` in segment `index` of `snapshot`, in
    /// position order (up to the snapshot's end in the tail).
    pub fn list(&self, snapshot: &Snapshot, index: usize, key: &Key) -> Result<Vec<u32>> {
        let segment = &snapshot.segments[index];
        if index + 1 == snapshot.segments.len() {
            return self.tail_list(segment, snapshot.limit(index), key);
        }
        let found = self.sealed_postings(segment)?;
        match &*found {
            Found::Built(postings) => Ok(postings.lists.get(key).cloned().unwrap_or_default()),
            Found::File { path, directory } => {
                let Some(&(offset, count, crc)) = directory.get(key) else {
                    return Ok(Vec::new());
                };
                let list = read_list(path, offset, count, crc);
                match list {
                    Some(list) => Ok(list),
                    None => {
                        // A damaged list, or a file replaced since: built again from the
                        // segment.
                        let built = Postings::build(segment)?.0;
                        let list = built.lists.get(key).cloned().unwrap_or_default();
                        self.remember(segment, Arc::new(Found::Built(built)));
                        Ok(list)
                    }
                }
            }
        }
    }

    /// The postings of the sealed `segment`: its file if it checks out, else built.
    fn sealed_postings(&self, segment: &Arc<Segment>) -> Result<Arc<Found>> {
        if let Some(entry) = self.sealed.lock().get(&segment.seq()) {
            if std::ptr::eq(entry.segment.as_ptr(), Arc::as_ptr(segment)) {
                return Ok(Arc::clone(&entry.found));
            }
        }
        let path = self.dir.join(postings_file_name(segment.base_position()));
        let found = match open_file(&path, segment) {
            Ok(found) => found,
            Err(_) => Found::Built(Postings::build(segment)?.0),
        };
        let found = Arc::new(found);
        self.remember(segment, Arc::clone(&found));
        Ok(found)
    }

    /// Keeps `found` as the postings of `segment`, and forgets those of segments no reader
    /// holds any more (replaced by a rewrite, or gone).
    fn remember(&self, segment: &Arc<Segment>, found: Arc<Found>) {
        let mut sealed = self.sealed.lock();
        sealed.retain(|_, e| e.segment.strong_count() > 0);
        let entry = Entry {
            segment: Arc::downgrade(segment),
            found,
        };
        sealed.insert(segment.seq(), entry);
    }

    /// The tail's list for `key`, indexing what was committed below `limit` since the last
    /// call.
    fn tail_list(&self, tail: &Arc<Segment>, limit: usize, key: &Key) -> Result<Vec<u32>> {
        let mut state = self.tail.lock();
        // A read of an older snapshot ignores what lies past its end.
        if state
            .as_ref()
            .is_none_or(|t| !std::ptr::eq(t.segment.as_ptr(), Arc::as_ptr(tail)))
        {
            *state = Some(Tail {
                segment: Arc::downgrade(tail),
                walked: Walked::at_start(tail, tail.base_position()),
                postings: Postings::default(),
            });
        }
        let Some(t) = state.as_mut() else {
            return Ok(Vec::new());
        };
        let postings = &mut t.postings;
        t.walked = walk_frames_between(tail, t.walked.clone(), limit, |ev, location| {
            postings.add(ev, location);
            Ok(())
        })?;
        if t.walked.end < limit && t.walked.fault != FrameFault::End {
            let reason = format!("committed data: {}", t.walked.fault);
            return Err(Error::corrupt(tail.path(), t.walked.end as u64, reason));
        }
        Ok(t.postings.lists.get(key).cloned().unwrap_or_default())
    }
}

/// Opens the type and category index at `path` and checks it against `segment`.
fn open_file(path: &Path, segment: &Segment) -> std::result::Result<Found, Damage> {
    let unreadable = |e: std::io::Error| Damage::Unreadable {
        what: "type and category index",
        kind: e.kind(),
    };
    let file = File::open(path).map_err(unreadable)?;
    let len = file.metadata().map_err(unreadable)?.len();
    let mut header = [0u8; POSTINGS_HEADER_LEN];
    file.read_exact_at(&mut header, 0).map_err(unreadable)?;
    let h = decode_postings_header(&header)?;
    let stale = Damage::Field {
        what: "type and category index",
        problem: "describes another state of the segment",
    };
    if h.base_position != segment.base_position()
        || h.seq != segment.seq()
        || !holds_frame(segment, &h.end)
        || !ends_at(segment, &h.end)
    {
        return Err(stale);
    }
    let head_len = POSTINGS_HEADER_LEN as u64 + u64::from(h.directory_len);
    if head_len > len {
        return Err(Damage::Length {
            what: "type and category index directory",
            length: head_len,
        });
    }
    let mut head = vec![0u8; head_len as usize];
    file.read_exact_at(&mut head, 0).map_err(unreadable)?;
    let directory = decode_postings_directory(&head)?
        .into_iter()
        .map(|e| {
            let key = Key {
                kind: e.kind,
                name: e.name.into(),
            };
            (key, (e.list_offset, e.count, e.list_crc))
        })
        .collect();
    Ok(Found::File {
        path: path.to_path_buf(),
        directory,
    })
}

/// Reads and checks the list of `count` offsets at `offset` of the file at `path`; `None` if
/// it cannot be read or does not match its CRC (a damaged file, or one replaced since).
fn read_list(path: &Path, offset: u64, count: u32, crc: u32) -> Option<Vec<u32>> {
    let file = File::open(path).ok()?;
    let len = u64::from(count) * 4;
    if offset.checked_add(len)? > file.metadata().ok()?.len() {
        return None;
    }
    let mut raw = vec![0u8; len as usize];
    file.read_exact_at(&mut raw, offset).ok()?;
    decode_postings_list(&raw, crc).ok()
}

/// Checks the type and category index of `segment` in `dir` whole (header against the
/// segment, directory and every list): `Ok(None)` without one, `Ok(Some(bytes))` with its
/// bytes if it is sound, the damage otherwise.
pub fn check_postings_file(
    dir: &Path,
    segment: &Segment,
) -> std::result::Result<Option<Vec<u8>>, Damage> {
    let path = dir.join(postings_file_name(segment.base_position()));
    if !path.exists() {
        return Ok(None);
    }
    let Found::File { directory, .. } = open_file(&path, segment)? else {
        return Ok(None);
    };
    for (offset, count, crc) in directory.values() {
        if read_list(&path, *offset, *count, *crc).is_none() {
            return Err(Damage::Field {
                what: "type and category index",
                problem: "a list does not match its checksum",
            });
        }
    }
    std::fs::read(&path)
        .map(Some)
        .map_err(|e| Damage::Unreadable {
            what: "type and category index",
            kind: e.kind(),
        })
}
