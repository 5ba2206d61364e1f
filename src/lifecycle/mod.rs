//! The lifecycle of streams: retention rules and soft deletes ([`Retention`]), persisted in
//! the `RETENTION` file (layout in [`crate::format::retention`]) and applied by stream reads;
//! and the rewrite of a sealed segment without some of its events, which compaction and
//! erasure (in `compact/`) are built on.
//!
//! May import `format` and `fs`.

mod retention;
mod rewrite;

pub use retention::Retention;
pub(crate) use retention::{read_retention_file, Retentions};
pub(crate) use rewrite::rewrite_segment;
