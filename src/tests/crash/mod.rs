//! Crash-state exploration: does the store open, whole and with every acknowledged append,
//! from every state a crash could leave on disk?
//!
//! Each workload runs against a real directory whose file operations are recorded
//! ([`crate::fs::trace`]), with marks in the trace where an append was acknowledged (`ack
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
//! The trace is then replayed through the model file system of [`model`]: at
//! every crash point (each boundary between operations, marks included with the operation
//! before them) several crash states ([`state`]) are drawn (everything, only what was
//! synced, random pages and directory entries, torn pages), each written into a fresh
//! directory and checked ([`check`]):
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

mod check;
mod draw;
mod model;
#[cfg(test)]
mod model_tests;
mod state;
mod workloads;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::fs::trace::Op;
use crate::tests::rng::Rng;

use check::Recovery;
use draw::{draw_all, Case};
use workloads::{
    buffered, checkpoints, group_commit, recover_then_append, reopen, single_appends, Workload,
};

/// Seed when `ANNALS_SEED` is not set.
const DEFAULT_SEED: u64 = 0xa11a_15c2_a5e5;
/// States to explore when `ANNALS_CRASH_STATES` is not set.
const DEFAULT_TARGET: usize = 10_000;
/// Failing states kept on disk for inspection.
const KEPT_STATES: usize = 3;

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
    /// States opened through an index snapshot.
    snapshots: usize,
}

impl Tally {
    fn add(&mut self, recovery: Option<Recovery>) {
        self.states += 1;
        if let Some(r) = recovery {
            self.cuts += usize::from(r.cut);
            self.rebuilds += usize::from(r.rebuilt > 0);
            self.empty += usize::from(r.events == 0);
            self.snapshots += usize::from(r.snapshot);
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
                let checked = check::check(&workloads[case.workload], case, i.is_multiple_of(10));
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
         index in {}, used an index snapshot in {}, found no event in {}]",
        w.name,
        tally.states,
        w.ops.len(),
        w.appends.len(),
        tally.cuts,
        tally.rebuilds,
        tally.snapshots,
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
