//! Hooks for the crate's own tests, built only with the `test-hooks` cargo feature (which the
//! crate's tests turn on for themselves): injected I/O failures, and a stream-name hash that
//! forces collisions. Not part of the stable API, and absent from normal builds.

/// Which of the writer's I/O calls fail (1 = the first call after opening). Set with
/// `Options::fault_plan`; for tests only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The `write` of a batch that fails.
    pub fail_write: Option<u64>,
    /// The `write` that puts only the first half of its bytes on disk, then fails.
    pub short_write: Option<u64>,
    /// The `write` that fails with ENOSPC ("no space left on device").
    pub disk_full: Option<u64>,
    /// The writer's `fdatasync` that fails (under `Fsync`: a batch's, a roll's, `sync`, close).
    pub fail_sync: Option<u64>,
    /// The `write` at which the writer panics, standing in for a bug.
    pub panic_on_write: Option<u64>,
}

/// The hooks an [`Options`](crate::Options) carries.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TestHooks {
    /// Replaces the hash of stream names used by the in-memory index.
    pub stream_hasher: Option<fn(&str) -> u64>,
    /// Which writer I/O calls fail.
    pub fault_plan: FaultPlan,
}
