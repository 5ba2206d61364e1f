//! Crash-state exploration: does the store open, whole and with every acknowledged append,
//! from every state a crash could leave on disk?
//!
//! Each workload runs against a real directory whose file operations are recorded
//! ([`crate::io::trace`]), with marks in the trace where an append was acknowledged (`ack
//! <id>`: under `Fsync` when `append` returned, under `Buffered` when a later `sync` did)
//! and where a checkpoint was saved (`ckpt proj <position>`). The workloads use 64 KiB
//! segments so that segments roll (with index side files written by a background thread and
//! the manifest rewritten):
//!
//! - `a`: single appends one after another;
//! - `b`: four threads appending batches of 1 to 5 events concurrently (group commit), some
//!   with event ids, some with expected versions on per-thread streams;
//! - `c`: appends interleaved with checkpoint saves;
//! - `d`: `Durability::Buffered` with a 1 ms flush interval and periodic `sync`;
//! - `e`: the store closed and reopened halfway;
//! - `f`: recovery from a crash, then appends: the directory starts as a crash state of `d`
//!   whose opening cuts a torn tail and rebuilds an index side file, so that crashes during
//!   and after a recovery are explored too. What the first opening recovered counts as
//!   acknowledged.
//!
//! Every event's payload starts with (append id, index in the append, events in the append)
//! and continues with bytes derived from them, so the checker knows what each event must be.
//!
//! The trace is then replayed through the model file system of [`super::crash_model`]: at
//! every crash point (each boundary between operations, marks included with the operation
//! before them) several crash states are drawn (everything, only what was synced, random
//! pages and directory entries, torn pages), each written into a fresh directory and
//! checked ([`check`]):
//!
//! - the store opens (a crash never damages synced data, so any error is a failure);
//! - `read_all(0)` reads without error; positions are dense from 0 and versions dense from
//!   0 per stream; every event is one that was appended, byte for byte;
//! - every append present is whole (all its events, consecutive, in order, one stream) and
//!   present once;
//! - every append acknowledged before the crash is present;
//! - the checkpoint is one that was saved, at least the last one acknowledged, and missing
//!   only if none was acknowledged;
//! - for every tenth state: one more append, a reopen, and the new event is there.
//!
//! `ANNALS_SEED` sets the seed (printed), `ANNALS_CRASH_STATES` the number of states to
//! explore (default 10,000; larger values also make the workloads longer), and
//! `ANNALS_CRASH_TRACE` (any value) prints every workload's trace. A failure prints the
//! workload, the crash point, the variant, the seed, the state's files and the trace before
//! the crash point, and keeps the first failing states in directories it names (the traces
//! of the workloads vary a little from run to run with thread timing, so a kept state is the
//! surest reproduction).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tempfile::TempDir;

use super::crash_model::{CrashState, Model, Variant};
use super::rng::Rng;
use crate::format::SEGMENT_HEADER_LEN;
use crate::io::trace::{self, Op};
use crate::{Durability, EventData, ExpectedVersion, Options, RecordedEvent, Store, TailCut};

/// Seed when `ANNALS_SEED` is not set.
const DEFAULT_SEED: u64 = 0xa11a_15c2_a5e5;
/// States to explore when `ANNALS_CRASH_STATES` is not set.
const DEFAULT_TARGET: usize = 10_000;
/// Crash points per workload beyond which they are sampled (times the scale).
const MAX_POINTS: usize = 2_000;
/// Random draws per crash point and pass.
const DRAWS_PER_PASS: usize = 2;
/// Passes over the crash points before giving up on reaching the target.
const MAX_PASSES: usize = 64;
/// Failing states kept on disk for inspection.
const KEPT_STATES: usize = 3;
/// The checkpoint the workloads save.
const CONSUMER: &str = "proj";
/// Payload of the event appended after recovery.
const AFTER: &[u8] = b"appended after recovery";

/// The seed: `ANNALS_SEED`, or a fixed default.
fn seed() -> u64 {
    std::env::var("ANNALS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

/// The number of crash states to explore: `ANNALS_CRASH_STATES`, or the default.
fn target() -> usize {
    std::env::var("ANNALS_CRASH_STATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_TARGET)
}

/// A fresh directory, in memory when `/dev/shm` exists.
fn temp_dir() -> TempDir {
    if Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}

/// 64 KiB segments, so that the workloads roll a few.
fn small_segments() -> Options {
    Options::default().segment_size(crate::MIN_SEGMENT_SIZE)
}

// ---------------------------------------------------------------------------------------
// Payloads that say what they are.

/// Bytes at the start of every payload: append id, index, count.
const HEADER: usize = 24;

/// A 64-bit mix (splitmix64's finaliser).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The payload of event `index` of the `count` events of append `append`: the three numbers,
/// then 76 to 1476 bytes derived from them.
fn payload(append: u64, index: u64, count: u64) -> Vec<u8> {
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
fn decode(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let n = |i: usize| {
        let bytes = payload.get(i * 8..i * 8 + 8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    };
    Some((n(0)?, n(1)?, n(2)?))
}

/// The id of event `index` of append `append`, for appends made with ids.
fn event_id(append: u64, index: u64) -> u128 {
    (u128::from(append) << 32 | u128::from(index)) + 1
}

// ---------------------------------------------------------------------------------------
// Recording workloads.

/// What the checker knows of an append.
#[derive(Debug, Clone)]
struct AppendSpec {
    stream: String,
    count: u64,
    with_ids: bool,
}

/// A workload that ran: its trace and what it appended and saved.
#[derive(Debug)]
struct Workload {
    name: &'static str,
    options: Options,
    /// The directory the trace was recorded in (gone now).
    root: PathBuf,
    ops: Vec<Op>,
    appends: HashMap<u64, AppendSpec>,
    /// Every checkpoint value saved.
    saved: Vec<u64>,
    /// `(op index, append id)` of each `ack` mark.
    acks: Vec<(usize, u64)>,
    /// `(op index, position)` of each `ckpt` mark.
    ckpts: Vec<(usize, u64)>,
    /// The files the directory held when recording started, all on stable storage (none if
    /// `None`).
    initial: Option<CrashState>,
}

/// Runs a workload against a recorded directory.
struct Recorder {
    dir: TempDir,
    options: Options,
    next_append: AtomicU64,
    appends: Mutex<HashMap<u64, AppendSpec>>,
    saved: Mutex<Vec<u64>>,
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
        if self.options.get_durability() == Durability::Fsync {
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
fn single_appends(scale: usize, _rng: &mut Rng) -> Workload {
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
fn group_commit(scale: usize, rng: &mut Rng) -> Workload {
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
fn thread_appends(rec: &Recorder, store: &Store, thread: usize, seed: u64, n: usize) {
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
fn checkpoints(scale: usize, rng: &mut Rng) -> Workload {
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
fn buffered(scale: usize, rng: &mut Rng) -> Workload {
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
fn reopen(scale: usize, rng: &mut Rng) -> Workload {
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
fn recover_then_append(from: &Workload, scale: usize, rng: &mut Rng) -> Workload {
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
fn state_needing_repair(w: &Workload, rng: &mut Rng) -> CrashState {
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
fn repairs(w: &Workload, state: &CrashState) -> (bool, bool) {
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
fn appends_in(store: &Store) -> Vec<u64> {
    let mut appends: Vec<u64> = store
        .read_all(0)
        .map(|ev| decode(ev.unwrap().payload()).unwrap().0)
        .collect();
    appends.dedup();
    appends
}

// ---------------------------------------------------------------------------------------
// Drawing crash states.

/// One crash state to check.
struct Case {
    /// Index of the workload.
    workload: usize,
    /// The crash came after the first `k` operations of the trace.
    k: usize,
    variant: Variant,
    /// Pass and draw that made the state, for reproduction.
    draw: (usize, usize),
    state: CrashState,
}

/// The crash points of a trace: after every operation, marks counted with the operation
/// before them (a crash just before a mark leaves the same files as one just after it, with
/// less to check). Sampled evenly if there are more than `max`.
fn crash_points(ops: &[Op], max: usize) -> Vec<usize> {
    let all: Vec<usize> = (0..=ops.len())
        .filter(|&k| k == ops.len() || !matches!(ops[k], Op::Mark(_)))
        .collect();
    let step = all.len().div_ceil(max).max(1);
    all.into_iter().step_by(step).collect()
}

/// Draws distinct states, pass after pass, until every workload has its share of `target`
/// (or has no new states to give), then more over all workloads if the total falls short.
fn draw_all(workloads: &[Workload], target: usize, scale: usize, seed: u64) -> Vec<Case> {
    let mut drawer = Drawer {
        workloads,
        scale,
        seed,
        passes: vec![0; workloads.len()],
        seen: HashSet::new(),
        cases: Vec::new(),
    };
    let share = target.div_ceil(workloads.len());
    for index in 0..workloads.len() {
        let mut drawn = 0;
        while drawn < share && drawer.passes[index] < MAX_PASSES {
            match drawer.pass(index) {
                0 if drawer.passes[index] > 2 => break,
                n => drawn += n,
            }
        }
    }
    for _ in 0..MAX_PASSES {
        if drawer.cases.len() >= target {
            break;
        }
        for index in 0..workloads.len() {
            drawer.pass(index);
        }
    }
    drawer.cases
}

/// The states drawn so far, and how many passes each workload has had.
struct Drawer<'w> {
    workloads: &'w [Workload],
    scale: usize,
    seed: u64,
    passes: Vec<usize>,
    /// (workload, fingerprint, marks before the crash point) of every state drawn.
    seen: HashSet<(usize, u64, usize)>,
    cases: Vec<Case>,
}

impl Drawer<'_> {
    /// One more pass over the crash points of workload `index`: on the first pass the two
    /// extreme states (everything, only what was synced), on every pass `DRAWS_PER_PASS`
    /// random ones where anything is pending. A state drawn before at a point with as many
    /// marks before it (so with the same checks) is skipped. Returns the new states.
    fn pass(&mut self, index: usize) -> usize {
        let pass = self.passes[index];
        self.passes[index] += 1;
        let mut rng = Rng::new(mix(self.seed ^ mix((pass * 16 + index) as u64)));
        let w = &self.workloads[index];
        let before = self.cases.len();
        let mut model = match &w.initial {
            Some(state) => Model::from_state(&w.root, state),
            None => Model::new(&w.root),
        };
        let (mut applied, mut marks) = (0, 0);
        for k in crash_points(&w.ops, MAX_POINTS * self.scale) {
            for op in &w.ops[applied..k] {
                marks += usize::from(matches!(op, Op::Mark(_)));
                model.apply(op);
            }
            applied = k;
            for (j, variant) in variants(pass, &model).enumerate() {
                let state = model.crash(variant, &mut rng);
                if self.seen.insert((index, state.fingerprint(), marks)) {
                    self.cases.push(Case {
                        workload: index,
                        k,
                        variant,
                        draw: (pass, j),
                        state,
                    });
                }
            }
        }
        self.cases.len() - before
    }
}

/// The variants to draw at a crash point on pass `pass`.
fn variants(pass: usize, model: &Model) -> impl Iterator<Item = Variant> {
    let extremes = if pass == 0 {
        &[Variant::Latest, Variant::Synced][..]
    } else {
        &[]
    };
    let draws = if model.has_pending() {
        DRAWS_PER_PASS
    } else {
        0
    };
    let random = [Variant::Random, Variant::Torn].into_iter().cycle();
    extremes.iter().copied().chain(random.take(draws))
}

// ---------------------------------------------------------------------------------------
// Checking a crash state.

/// What opening a crash state did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
struct Recovery {
    /// Opening cut a torn tail.
    cut: bool,
    /// Index side files rebuilt while opening.
    rebuilt: usize,
    /// Events the store held.
    events: u64,
}

/// Writes the state of `case` into a fresh directory, opens the store there and checks it
/// (and, if `append_after`, appends, reopens and checks again). `Err` says what is wrong.
fn check(w: &Workload, case: &Case, append_after: bool) -> Result<Recovery, String> {
    let dir = temp_dir();
    case.state
        .write_to(dir.path())
        .map_err(|e| format!("cannot write the state: {e}"))?;
    let store =
        Store::open_with(dir.path(), w.options.clone()).map_err(|e| format!("open failed: {e}"))?;
    let report = store.open_report();
    let recovery = Recovery {
        cut: report.cut.is_some(),
        rebuilt: report.rebuilt_indexes.len(),
        events: report.events,
    };
    let events = read_all(&store)?;
    let present = check_log(w, &events)?;
    check_acknowledged(w, case.k, &present)?;
    check_checkpoint(w, case.k, &store)?;
    if append_after {
        check_append_after(w, dir.path(), store, events.len() as u64)?;
    }
    Ok(recovery)
}

/// Every event of the store, in position order.
fn read_all(store: &Store) -> Result<Vec<RecordedEvent>, String> {
    store
        .read_all(0)
        .collect::<crate::Result<Vec<_>>>()
        .map_err(|e| format!("read_all failed: {e}"))
}

/// Checks positions, versions and events, and that every append present is whole and
/// present once. Returns the appends present.
fn check_log(w: &Workload, events: &[RecordedEvent]) -> Result<HashSet<u64>, String> {
    check_dense(events)?;
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for ev in events {
        let next = versions.entry(ev.stream()).or_insert(0);
        if ev.version() != *next {
            return Err(format!(
                "position {}: version {} of stream {}, where {next} was expected",
                ev.position(),
                ev.version(),
                ev.stream()
            ));
        }
        *next += 1;
    }
    let mut present = HashSet::new();
    let mut at = 0;
    while at < events.len() {
        let (append, count) = check_append(w, &events[at..])?;
        if !present.insert(append) {
            return Err(format!(
                "append {append} appears twice (again at position {at})"
            ));
        }
        at += count as usize;
    }
    Ok(present)
}

/// Checks that positions are dense from 0.
fn check_dense(events: &[RecordedEvent]) -> Result<(), String> {
    match (0u64..).zip(events).find(|(p, ev)| ev.position() != *p) {
        Some((p, ev)) => Err(format!("position {} where {p} was expected", ev.position())),
        None => Ok(()),
    }
}

/// Checks that `events` start with a whole append; returns its id and event count.
fn check_append(w: &Workload, events: &[RecordedEvent]) -> Result<(u64, u64), String> {
    let first = &events[0];
    let (append, index, count) = check_event(w, first)?;
    if index != 0 {
        return Err(format!(
            "position {}: event {index} of append {append} without the events before it",
            first.position()
        ));
    }
    if events.len() < count as usize {
        return Err(format!(
            "append {append} has {} of its {count} events (from position {})",
            events.len(),
            first.position()
        ));
    }
    for (i, ev) in (0..count).zip(events) {
        let found = check_event(w, ev)?;
        if found != (append, i, count) {
            return Err(format!(
                "position {}: event {found:?} (append, index, count) inside append {append} \
                 of {count} events",
                ev.position()
            ));
        }
    }
    Ok((append, count))
}

/// Checks that `ev` is an event that was appended, byte for byte; returns its (append id,
/// index, count).
fn check_event(w: &Workload, ev: &RecordedEvent) -> Result<(u64, u64, u64), String> {
    let at = ev.position();
    let (append, index, count) = decode(ev.payload())
        .ok_or_else(|| format!("position {at}: payload of {} bytes", ev.payload().len()))?;
    let spec = w
        .appends
        .get(&append)
        .ok_or_else(|| format!("position {at}: event of unknown append {append}"))?;
    if count != spec.count || index >= count {
        return Err(format!(
            "position {at}: event {index} of {count} of append {append}, which had {}",
            spec.count
        ));
    }
    if ev.payload() != payload(append, index, count).as_slice() {
        return Err(format!(
            "position {at}: payload bytes of append {append} differ"
        ));
    }
    if ev.stream() != spec.stream {
        return Err(format!(
            "position {at}: append {append} in stream {}, not {}",
            ev.stream(),
            spec.stream
        ));
    }
    let id = spec.with_ids.then(|| event_id(append, index));
    if ev.id() != id {
        return Err(format!("position {at}: id {:?}, not {id:?}", ev.id()));
    }
    Ok((append, index, count))
}

/// Checks that every append acknowledged before operation `k` is present.
fn check_acknowledged(w: &Workload, k: usize, present: &HashSet<u64>) -> Result<(), String> {
    match w
        .acks
        .iter()
        .find(|&&(op, append)| op < k && !present.contains(&append))
    {
        Some((op, append)) => Err(format!(
            "append {append}, acknowledged at op {op}, is missing ({} appends present)",
            present.len()
        )),
        None => Ok(()),
    }
}

/// Checks the checkpoint: readable, one that was saved, no older than the last one
/// acknowledged before operation `k`, and missing only if none was.
fn check_checkpoint(w: &Workload, k: usize, store: &Store) -> Result<(), String> {
    let found = store
        .checkpoint(CONSUMER)
        .map_err(|e| format!("checkpoint({CONSUMER:?}) failed: {e}"))?;
    let acknowledged = w
        .ckpts
        .iter()
        .rev()
        .find(|(op, _)| *op < k)
        .map(|&(_, p)| p);
    match (found, acknowledged) {
        (None, None) => Ok(()),
        (None, Some(last)) => Err(format!("checkpoint missing; {last} was saved")),
        (Some(p), _) if !w.saved.contains(&p) => Err(format!("checkpoint {p} was never saved")),
        (Some(p), Some(last)) if p < last => Err(format!(
            "checkpoint {p}, older than {last}, which was saved"
        )),
        (Some(_), _) => Ok(()),
    }
}

/// Appends one event to the recovered store, reopens it and checks the event is there,
/// after the `events` recovered, with positions still dense.
fn check_append_after(w: &Workload, dir: &Path, store: Store, events: u64) -> Result<(), String> {
    store
        .append("after", ExpectedVersion::Any, [EventData::new("E", AFTER)])
        .map_err(|e| format!("append after recovery failed: {e}"))?;
    drop(store);
    let store = Store::open_with(dir, w.options.clone())
        .map_err(|e| format!("reopen after an append failed: {e}"))?;
    let all = read_all(&store)?;
    check_dense(&all)?;
    match all.last() {
        Some(ev) if all.len() as u64 == events + 1 && ev.payload() == AFTER => Ok(()),
        _ => Err(format!(
            "after one append and a reopen: {} events, not {} ending with the new one",
            all.len(),
            events + 1
        )),
    }
}

// ---------------------------------------------------------------------------------------
// Running it all.

/// A state that failed its checks.
struct Failure {
    case: usize,
    message: String,
}

/// What checking the states of one workload found.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    states: usize,
    /// States whose opening cut a torn tail.
    cuts: usize,
    /// States whose opening rebuilt an index side file.
    rebuilds: usize,
    /// States whose store held no event.
    empty: usize,
}

impl Tally {
    fn add(&mut self, recovery: Option<Recovery>) {
        self.states += 1;
        if let Some(r) = recovery {
            self.cuts += usize::from(r.cut);
            self.rebuilds += usize::from(r.rebuilt > 0);
            self.empty += usize::from(r.events == 0);
        }
    }
}

/// Checks every case on all cores; returns the failures and a tally per workload.
fn check_all(workloads: &[Workload], cases: &[Case]) -> (Vec<Failure>, Vec<Tally>) {
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let tallies = Mutex::new(vec![Tally::default(); workloads.len()]);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(8));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let checked = check(&workloads[case.workload], case, i.is_multiple_of(10));
                tallies.lock()[case.workload].add(checked.as_ref().ok().copied());
                if let Err(message) = checked {
                    failures.lock().push(Failure { case: i, message });
                }
            });
        }
    });
    (failures.into_inner(), tallies.into_inner())
}

/// Prints the failures (the earliest crash points first) and keeps a few failing states on
/// disk.
fn report(workloads: &[Workload], cases: &[Case], failures: &mut [Failure], seed: u64) {
    failures.sort_by_key(|f| (cases[f.case].workload, cases[f.case].k, f.case));
    for (n, failure) in failures.iter().take(10).enumerate() {
        let case = &cases[failure.case];
        let w = &workloads[case.workload];
        eprintln!(
            "FAILED workload {} crash after op {} of {}, variant {:?} (pass {}, draw {}), \
             ANNALS_SEED={seed}: {}",
            w.name,
            case.k,
            w.ops.len(),
            case.variant,
            case.draw.0,
            case.draw.1,
            failure.message
        );
        eprintln!(" files:\n{}", case.state);
        eprintln!(" trace before the crash:");
        for (i, op) in w
            .ops
            .iter()
            .enumerate()
            .take(case.k)
            .skip(case.k.saturating_sub(8))
        {
            eprintln!("  {i}: {}", describe(op, &w.root));
        }
        if n < KEPT_STATES {
            let kept = tempfile::tempdir().unwrap().keep();
            case.state.write_to(&kept).unwrap();
            eprintln!(" state kept in {}", kept.display());
        }
    }
}

/// A workload's tally in a few words.
fn summary((w, tally): (&Workload, &Tally)) -> String {
    let initial = w.initial.as_ref().map_or(0, |state| {
        state
            .paths()
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .count()
    });
    let segments = initial + w.ops.iter().filter(|op| is_new_segment(op)).count();
    format!(
        "{} {} [{} ops, {} appends, {segments} segments; opening cut a tail in {}, rebuilt an \
         index in {}, found no event in {}]",
        w.name,
        tally.states,
        w.ops.len(),
        w.appends.len(),
        tally.cuts,
        tally.rebuilds,
        tally.empty
    )
}

/// Whether `op` renames a new segment into place.
fn is_new_segment(op: &Op) -> bool {
    matches!(op, Op::Rename { to, .. } if to.extension().is_some_and(|e| e == "log"))
}

/// One operation in a line, paths relative to the store, written bytes summarised.
fn describe(op: &Op, root: &Path) -> String {
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    match op {
        Op::Create(p) => format!("create {}", rel(p)),
        Op::Write {
            path,
            offset,
            bytes,
        } => format!(
            "write {} [{offset}, {})",
            rel(path),
            offset + bytes.len() as u64
        ),
        Op::SetLen { path, len } => format!("set_len {} {len}", rel(path)),
        Op::Sync(p) => format!("sync {}", rel(p)),
        Op::Rename { from, to } => format!("rename {} -> {}", rel(from), rel(to)),
        Op::Remove(p) => format!("remove {}", rel(p)),
        Op::SyncDir(p) => format!("sync_dir {}/", rel(p)),
        Op::Mark(label) => format!("mark {label}"),
    }
}

#[test]
fn crash_states() {
    let started = Instant::now();
    let (seed, target) = (seed(), target());
    let scale = target.div_ceil(DEFAULT_TARGET).max(1);
    eprintln!("crash_states: ANNALS_SEED={seed} ANNALS_CRASH_STATES={target}");
    let mut rng = Rng::new(seed);
    let mut workloads: Vec<Workload> =
        [single_appends, group_commit, checkpoints, buffered, reopen]
            .iter()
            .map(|run| run(scale, &mut rng))
            .collect();
    let after_crash = recover_then_append(&workloads[3], scale, &mut rng);
    workloads.push(after_crash);
    if std::env::var_os("ANNALS_CRASH_TRACE").is_some() {
        for w in &workloads {
            eprintln!("trace of workload {}:", w.name);
            for (i, op) in w.ops.iter().enumerate() {
                eprintln!("  {i}: {}", describe(op, &w.root));
            }
        }
    }
    let cases = draw_all(&workloads, target, scale, seed);
    let (mut failures, tallies) = check_all(&workloads, &cases);
    let per_workload: Vec<String> = workloads.iter().zip(&tallies).map(summary).collect();
    eprintln!(
        "crash states explored: {} (workloads: {}) in {:.1?}",
        cases.len(),
        per_workload.join(", "),
        started.elapsed()
    );
    report(&workloads, &cases, &mut failures, seed);
    assert!(
        failures.is_empty(),
        "{} of {} crash states failed (ANNALS_SEED={seed}); see above",
        failures.len(),
        cases.len()
    );
    assert!(
        cases.len() >= target,
        "only {} distinct crash states",
        cases.len()
    );
}
