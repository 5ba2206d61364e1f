//! Fault injection for tests: makes the writer's `write` or `fdatasync` fail at a chosen
//! call, to show what a failing disk does to waiting appends. Not part of the stable API.

use std::io;

/// Which of the writer's I/O calls fail (1 = the first call after opening). Set with
/// `Options::fault_plan`; for tests only.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The `write` of a batch that fails.
    pub fail_write: Option<u64>,
    /// The `fdatasync` of a batch that fails.
    pub fail_sync: Option<u64>,
}

/// A [`FaultPlan`] and the calls made so far.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    plan: FaultPlan,
    writes: u64,
    syncs: u64,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Self {
        Faults {
            plan,
            ..Faults::default()
        }
    }

    /// Called before each `write` of the writer: the injected error, if this one fails.
    pub fn before_write(&mut self) -> io::Result<()> {
        self.writes += 1;
        check(self.plan.fail_write, self.writes, "write")
    }

    /// Called before each `fdatasync` of the writer: the injected error, if this one fails.
    pub fn before_sync(&mut self) -> io::Result<()> {
        self.syncs += 1;
        check(self.plan.fail_sync, self.syncs, "fdatasync")
    }
}

fn check(fail_at: Option<u64>, call: u64, what: &str) -> io::Result<()> {
    if fail_at == Some(call) {
        return Err(io::Error::other(format!(
            "injected {what} failure (call {call})"
        )));
    }
    Ok(())
}
