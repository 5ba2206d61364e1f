//! Fault injection for tests: makes the writer's `write` fail, write only part of its bytes,
//! or report a full disk, or its `fdatasync` fail, at a chosen call, to show what a failing
//! disk does to waiting appends. Not part of the stable API.

use std::io;

/// Which of the writer's I/O calls fail (1 = the first call after opening). Set with
/// `Options::fault_plan`; for tests only.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The `write` of a batch that fails.
    pub fail_write: Option<u64>,
    /// The `write` that puts only the first half of its bytes on disk, then fails.
    pub short_write: Option<u64>,
    /// The `write` that fails with ENOSPC ("no space left on device").
    pub disk_full: Option<u64>,
    /// The `fdatasync` of a batch that fails.
    pub fail_sync: Option<u64>,
    /// The `write` at which the writer panics, standing in for a bug.
    pub panic_on_write: Option<u64>,
}

/// What an injected fault asks the writer to do with a `write`.
#[derive(Debug)]
pub(crate) enum WriteFault {
    /// Write the first half of the bytes, then fail with the error.
    Short(io::Error),
    /// Write nothing and fail with the error.
    Fail(io::Error),
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

    /// Called before each `write` of the writer: the injected fault, if this one fails.
    pub fn before_write(&mut self) -> Option<WriteFault> {
        self.writes += 1;
        let call = self.writes;
        assert!(
            self.plan.panic_on_write != Some(call),
            "injected panic (write call {call})"
        );
        if self.plan.disk_full == Some(call) {
            return Some(WriteFault::Fail(io::Error::from_raw_os_error(28)));
        }
        if self.plan.short_write == Some(call) {
            return Some(WriteFault::Short(io::Error::other(format!(
                "injected short write (call {call})"
            ))));
        }
        check(self.plan.fail_write, call, "write")
            .err()
            .map(WriteFault::Fail)
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
