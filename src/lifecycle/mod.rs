//! The lifecycle of streams: retention rules and soft deletes ([`Retention`]), persisted in
//! the `RETENTION` file (layout in [`crate::format::retention`]) and applied by stream reads.
//! Compaction, which removes what they hide, comes later.
//!
//! May import `format` and `fs`.

mod retention;

pub use retention::Retention;
pub(crate) use retention::{read_retention_file, Retentions};
