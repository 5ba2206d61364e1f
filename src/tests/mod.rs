//! Tests that need the crate's internals: the crash-state exploration, which replays the
//! file operations recorded by [`crate::fs::trace`] through a model file system.

// Test code: a failed setup step should panic with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;

#[path = "../../tests/common/rng.rs"]
mod rng;
