//! The write path: validating an append, group commit, the single writer (frames, the durable
//! position, rolls and seals, the manifest), the background flush under `Buffered`, and the
//! fault injection of the tests.
//!
//! May import `format`, `fs`, `log`, `index` and `recover` (the writer continues the log that
//! recovery opened).

pub(crate) mod commit;
pub(crate) mod fault;
mod flush;
pub(crate) mod validate;
pub(crate) mod writer;
