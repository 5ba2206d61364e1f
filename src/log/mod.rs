//! The committed log as readers see it: a [`Snapshot`] of the segments, the walk over one
//! segment's frames ([`scan`]), and the [`CommitSignal`] the writer raises after each batch.
//!
//! Owns no file; reads segments through [`crate::fs::segment`] and decodes them with
//! [`crate::format`]. May import `format` and `fs` only.

pub(crate) mod scan;
mod signal;
mod snapshot;

pub(crate) use signal::CommitSignal;
pub(crate) use snapshot::Snapshot;
