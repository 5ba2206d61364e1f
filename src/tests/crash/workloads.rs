//! The workloads of the crash-state exploration: what they append and save, recorded through
//! [`crate::fs::trace`], and the payloads that say which event they are.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tempfile::TempDir;

use crate::format::SEGMENT_HEADER_LEN;
use crate::fs::trace::{self, Op};
use crate::tests::rng::Rng;
use crate::{Durability, EventData, ExpectedVersion, Options, Store, TailCut};

use super::model::{Model, Variant};
use super::state::CrashState;

/// The checkpoint the workloads save.
pub(super) const CONSUMER: &str = "proj";

/// A fresh directory, in memory when `/dev/shm` exists.
pub(super) fn temp_dir() -> TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// 64 KiB segments, so that the workloads roll a few.
pub(super) fn small_segments() -> Options {
    Options::default().segment_size(crate::MIN_SEGMENT_SIZE)
}

/// Bytes at the start of every payload: append id, index, count.
pub(super) const HEADER: usize = 24;

/// A 64-bit mix (splitmix64's finaliser).
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The payload of event `index` of the `count` events of append `append`: the three numbers,
/// then 76 to 1476 bytes derived from them.
pub(super) fn payload(append: u64, index: u64, count: u64) -> Vec<u8> {
    let mut rng = Rng::new(mix(append ^ mix(index)));
    let len = 100 + rng.below(1401) as usize;
    let mut bytes = Vec::with_capacity(len);
    for n in [append, index, count] {
        bytes.extend_from_slice(&n.to_le_bytes());
    }
    bytes.extend(rng.bytes(len - HEADER));
    bytes
}

/// The (append id, index, count) a payload starts with.
pub(super) fn decode(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let n = |i: usize| {
        let bytes = payload.get(i * 8..i * 8 + 8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    };
    Some((n(0)?, n(1)?, n(2)?))
}

/// The id of event `index` of append `append`, for appends made with ids.
pub(super) fn event_id(append: u64, index: u64) -> u128 {
    (u128::from(append) << 32 | u128::from(index)) + 1
}

// ---------------------------------------------------------------------------------------
// Recording workloads.

/// What the checker knows of an append.
#[derive(Debug, Clone)]
pub(super) struct AppendSpec {
    pub(super) stream: String,
    pub(super) count: u64,
    pub(super) with_ids: bool,
}

/// A workload that ran: its trace and what it appended and saved.
#[derive(Debug)]
pub(super) struct Workload {
    pub(super) name: &'static str,
    pub(super) options: Options,
    /// The directory the trace was recorded in (gone now).
    pub(super) root: PathBuf,
    pub(super) ops: Vec<Op>,
    pub(super) appends: HashMap<u64, AppendSpec>,
    /// Every checkpoint value saved.
    pub(super) saved: Vec<u64>,
    /// `(op index, append id)` of each `ack` mark.
    pub(super) acks: Vec<(usize, u64)>,
    /// `(op index, position)` of each `ckpt` mark.
    pub(super) ckpts: Vec<(usize, u64)>,
    /// The files the directory held when recording started, all on stable storage (none if
    /// `None`).
    pub(super) initial: Option<CrashState>,
}

/// Runs a workload against a recorded directory.
pub(super) struct Recorder {
    pub(super) dir: TempDir,
    pub(super) options: Options,
    pub(super) next_append: AtomicU64,
    pub(super) appends: Mutex<HashMap<u64, AppendSpec>>,
    pub(super) saved: Mutex<Vec<u64>>,
}

impl Recorder {
    /// A fresh directory, recorded from now on.
    fn new(options: Options) -> Self {
        let dir = temp_dir();
        trace::start(dir.path());
        Recorder {
            dir,
            options,
            next_append: AtomicU64::new(0),
            appends: Mutex::new(HashMap::new()),
            saved: Mutex::new(Vec::new()),
        }
    }

    /// A fresh directory holding `state` (a crash state of workload `from`), recorded from
    /// now on; appends are numbered after those of `from`, whose appends the state may hold.
    fn seeded(options: Options, state: &CrashState, from: &Workload) -> Self {
        let dir = temp_dir();
        state.write_to(dir.path()).unwrap();
        trace::start(dir.path());
        let next = from.appends.keys().max().map_or(0, |&last| last + 1);
        Recorder {
            dir,
            options,
            next_append: AtomicU64::new(next),
            appends: Mutex::new(from.appends.clone()),
            saved: Mutex::new(from.saved.clone()),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn open(&self) -> Store {
        Store::open_with(self.path(), self.options.clone()).unwrap()
    }

    /// Appends `count` events to `stream`; marks the append acknowledged under `Fsync`.
    /// Returns its id.
    fn append(
        &self,
        store: &Store,
        stream: &str,
        expected: ExpectedVersion,
        count: u64,
        with_ids: bool,
    ) -> u64 {
        let append = self.next_append.fetch_add(1, Ordering::Relaxed);
        let spec = AppendSpec {
            stream: stream.to_string(),
            count,
            with_ids,
        };
        self.appends.lock().insert(append, spec);
        let events = (0..count).map(|i| {
            let event = EventData::new("E", payload(append, i, count));
            if with_ids {
                event.id(event_id(append, i))
            } else {
                event
            }
        });
        if let Err(e) = store.append(stream, expected, events) {
            panic!("append {append} to {stream} ({expected}) failed: {e}");
        }
        if self.options.durability == Durability::Fsync {
            self.acknowledge(&[append]);
        }
        append
    }

    /// Marks appends acknowledged: they must survive any crash from now on.
    fn acknowledge(&self, appends: &[u64]) {
        for append in appends {
            trace::mark(self.path(), format!("ack {append}"));
        }
    }

    /// Saves the checkpoint and marks it.
    fn save_checkpoint(&self, store: &Store, position: u64) {
        self.saved.lock().push(position);
        store.save_checkpoint(CONSUMER, position).unwrap();
        trace::mark(self.path(), format!("ckpt {CONSUMER} {position}"));
    }

    /// Stops recording (every store on the directory must be dropped).
    fn finish(self, name: &'static str) -> Workload {
        let ops = trace::stop(self.path());
        let label = |i: usize, op: &Op, prefix: &str| match op {
            Op::Mark(label) => label
                .strip_prefix(prefix)
                .map(|n| (i, n.parse::<u64>().unwrap())),
            _ => None,
        };
        let acks = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| label(i, op, "ack "));
        let ckpt = format!("ckpt {CONSUMER} ");
        let ckpts = ops
            .iter()
            .enumerate()
            .filter_map(|(i, op)| label(i, op, &ckpt));
        Workload {
            name,
            root: self.path().to_path_buf(),
            acks: acks.collect(),
            ckpts: ckpts.collect(),
            ops,
            options: self.options,
            appends: self.appends.into_inner(),
            saved: self.saved.into_inner(),
            initial: None,
        }
    }
}

/// `a`: single appends, one after another.
pub(super) fn single_appends(scale: usize, _rng: &mut Rng) -> Workload {
    let rec = Recorder::new(small_segments());
    let store = rec.open();
    for i in 0..170 * scale {
        rec.append(
            &store,
            &format!("a-{}", i % 3),
            ExpectedVersion::Any,
            1,
            false,
        );
    }
    drop(store);
    rec.finish("a")
}

/// `b`: four threads appending batches concurrently (group commit).
pub(super) fn group_commit(scale: usize, rng: &mut Rng) -> Workload {
    let rec = Recorder::new(small_segments());
    let store = rec.open();
    let seeds: Vec<u64> = (0..4).map(|_| rng.next()).collect();
    std::thread::scope(|s| {
        for (thread, seed) in seeds.into_iter().enumerate() {
            let (rec, store) = (&rec, store.clone());
            s.spawn(move || thread_appends(rec, &store, thread, seed, 18 * scale));
        }
    });
    drop(store);
    rec.finish("b")
}

/// One thread of workload `b`: `n` appends of 1 to 5 events to its own stream, some with
/// ids, some with an expected version.
pub(super) fn thread_appends(rec: &Recorder, store: &Store, thread: usize, seed: u64, n: usize) {
    let mut rng = Rng::new(seed);
    let stream = format!("b-{thread}");
    let mut last: Option<u64> = None;
    for _ in 0..n {
        let count = 1 + rng.below(5);
        let expected = match (last, rng.below(3)) {
            (None, 0) => ExpectedVersion::NoStream,
            (Some(v), 0 | 1) => ExpectedVersion::Exact(v),
            _ => ExpectedVersion::Any,
        };
        rec.append(store, &stream, expected, count, rng.below(2) == 0);
        last = Some(last.map_or(count - 1, |v| v + count));
    }
}

/// `c`: appends interleaved with checkpoint saves.
pub(super) fn checkpoints(scale: usize, rng: &mut Rng) -> Workload {
    let rec = Recorder::new(small_segments());
    let store = rec.open();
    for i in 0..80 * scale {
        rec.append(
            &store,
            "c",
            ExpectedVersion::Any,
            1 + rng.below(3),
            i % 2 == 0,
        );
        if i % 4 == 3 {
            rec.save_checkpoint(&store, store.next_position());
        }
    }
    drop(store);
    rec.finish("c")
}

/// `d`: `Buffered` appends, acknowledged by periodic `sync`s.
pub(super) fn buffered(scale: usize, rng: &mut Rng) -> Workload {
    let options = small_segments()
        .durability(Durability::Buffered)
        .flush_interval(Duration::from_millis(1));
    let rec = Recorder::new(options);
    let store = rec.open();
    let mut unsynced = Vec::new();
    for i in 0..90 * scale {
        let stream = format!("d-{}", i % 2);
        unsynced.push(rec.append(
            &store,
            &stream,
            ExpectedVersion::Any,
            1 + rng.below(3),
            false,
        ));
        if i % 8 == 7 {
            store.sync().unwrap();
            rec.acknowledge(&unsynced);
            unsynced.clear();
        }
    }
    store.sync().unwrap();
    rec.acknowledge(&unsynced);
    drop(store);
    rec.finish("d")
}

/// `e`: appends, close, reopen, more appends.
pub(super) fn reopen(scale: usize, rng: &mut Rng) -> Workload {
    let rec = Recorder::new(small_segments());
    for _ in 0..2 {
        let store = rec.open();
        for i in 0..50 * scale {
            let stream = format!("e-{}", i % 2);
            rec.append(
                &store,
                &stream,
                ExpectedVersion::Any,
                1 + rng.below(3),
                i % 3 == 0,
            );
        }
        store.close().unwrap();
    }
    rec.finish("e")
}

/// `f`: recovery from a crash state of `from` that needs repairs, then appends.
pub(super) fn recover_then_append(from: &Workload, scale: usize, rng: &mut Rng) -> Workload {
    let start = state_needing_repair(from, rng);
    let rec = Recorder::seeded(small_segments(), &start, from);
    let store = rec.open();
    // Opening left what it recovered on stable storage: it must survive every later crash.
    rec.acknowledge(&appends_in(&store));
    for i in 0..50 * scale {
        rec.append(
            &store,
            "f",
            ExpectedVersion::Any,
            1 + rng.below(3),
            i % 2 == 0,
        );
    }
    drop(store);
    let mut w = rec.finish("f");
    w.initial = Some(start);
    w
}

/// The first crash state of `w` (drawn with torn pages) whose opening cuts a torn tail after
/// an intact frame and rebuilds an index side file; failing that, the first that cuts a tail.
pub(super) fn state_needing_repair(w: &Workload, rng: &mut Rng) -> CrashState {
    let mut model = Model::new(&w.root);
    let mut fallback = None;
    for op in &w.ops {
        model.apply(op);
        if !model.has_pending() {
            continue;
        }
        let state = model.crash(Variant::Torn, rng);
        match repairs(w, &state) {
            (true, true) => return state,
            (true, false) if fallback.is_none() => fallback = Some(state),
            _ => {}
        }
    }
    fallback.expect("no crash state of the workload has a torn tail")
}

/// Whether opening `state` cuts a torn tail after an intact frame, and whether it rebuilds an
/// index side file.
pub(super) fn repairs(w: &Workload, state: &CrashState) -> (bool, bool) {
    let dir = temp_dir();
    state.write_to(dir.path()).unwrap();
    match Store::open_with(dir.path(), w.options.clone()) {
        Ok(store) => {
            let report = store.open_report();
            let after_frame = |cut: &TailCut| cut.offset > SEGMENT_HEADER_LEN as u64;
            let cut = report.cut.as_ref().is_some_and(after_frame);
            (cut, !report.rebuilt_indexes.is_empty())
        }
        Err(_) => (false, false),
    }
}

/// The ids of the appends in the store, in order.
pub(super) fn appends_in(store: &Store) -> Vec<u64> {
    let mut appends: Vec<u64> = store
        .read_all(0)
        .map(|ev| decode(ev.unwrap().payload()).unwrap().0)
        .collect();
    appends.dedup();
    appends
}
