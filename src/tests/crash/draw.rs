//! Drawing crash states from the traces of the workloads: the crash points, and distinct
//! states at each.

use std::collections::HashSet;

use crate::fs::trace::Op;
use crate::tests::rng::Rng;

use super::model::{Model, Variant};
use super::state::CrashState;
use super::workloads::{mix, Workload};

/// Crash points per workload beyond which they are sampled (times the scale).
pub(super) const MAX_POINTS: usize = 2_000;

/// Random draws per crash point and pass.
pub(super) const DRAWS_PER_PASS: usize = 2;

/// Passes over the crash points before giving up on reaching the target.
pub(super) const MAX_PASSES: usize = 64;

/// One crash state to check.
pub(super) struct Case {
    /// Index of the workload.
    pub(super) workload: usize,
    /// The crash came after the first `k` operations of the trace.
    pub(super) k: usize,
    pub(super) variant: Variant,
    /// Pass and draw that made the state, for reproduction.
    pub(super) draw: (usize, usize),
    pub(super) state: CrashState,
}

/// The crash points of a trace: after every operation, marks counted with the operation
/// before them (a crash just before a mark leaves the same files as one just after it, with
/// less to check). Sampled evenly if there are more than `max`.
pub(super) fn crash_points(ops: &[Op], max: usize) -> Vec<usize> {
    let all: Vec<usize> = (0..=ops.len())
        .filter(|&k| k == ops.len() || !matches!(ops[k], Op::Mark(_)))
        .collect();
    let step = all.len().div_ceil(max).max(1);
    all.into_iter().step_by(step).collect()
}

/// Draws distinct states, pass after pass, until every workload has its share of `target`
/// (or has no new states to give), then more over all workloads if the total falls short.
pub(super) fn draw_all(
    workloads: &[Workload],
    target: usize,
    scale: usize,
    seed: u64,
) -> Vec<Case> {
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
pub(super) struct Drawer<'w> {
    pub(super) workloads: &'w [Workload],
    pub(super) scale: usize,
    pub(super) seed: u64,
    pub(super) passes: Vec<usize>,
    /// (workload, fingerprint, marks before the crash point) of every state drawn.
    pub(super) seen: HashSet<(usize, u64, usize)>,
    pub(super) cases: Vec<Case>,
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
pub(super) fn variants(pass: usize, model: &Model) -> impl Iterator<Item = Variant> {
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
