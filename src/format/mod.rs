//! The on-disk format, all of it. Every integer is little endian and fixed width; every
//! offset is a named constant next to the layout it belongs to, in the submodule of its file:
//! [`segment`] (segment header and manifest), [`frame`], [`record`], [`index_file`],
//! [`index_snapshot`], [`postings`] (by type and category), [`checkpoint`], [`retention`] and [`rewritten`] (segments that compaction or erasure wrote anew). Everything is re-exported here. Imports nothing of the crate: every other
//! module builds on it.
//!
//! # Directory
//!
//! A store is a directory holding:
//!
//! | file | what it holds |
//! |---|---|
//! | `LOCK` | empty; an exclusive OS file lock on it marks the store as open |
//! | `{base:020}.log` | a segment: the events from global position `base` on, e.g. `00000000000000000000.log`; one that compaction or erasure wrote anew ends with a run table and a trailer (see [`rewritten`]) |
//! | `{base:020}.idx` | the index side file of a sealed segment (see below) |
//! | `{base:020}.tix` | the type and category index of a sealed segment (see [`postings`]) |
//! | `INDEX` | the index snapshot: the stream index and the id window at one point of the log, read through a map (see [`index_snapshot`]) |
//! | `MANIFEST` | names the tail segment, so that a lost segment file is noticed (see below) |
//! | `checkpoints/{name}` | a consumer checkpoint (see below) |
//! | `RETENTION` | every stream's retention rules and soft deletes (see [`retention`]) |
//! | `COPY-PROGRESS` | in the destination of `Store::copy_to`: how far the copy got (see [`copy_progress`]) |
//! | `{base:020}.log.tmp`, `{base:020}.idx.tmp`, `{base:020}.tix.tmp`, `MANIFEST.tmp`, `INDEX.tmp`, `RETENTION.tmp`, `COPY-PROGRESS.tmp`, `checkpoints/.{name}.tmp` | a file being created; deleted on open (a crash left it half made) |
//!
//! Opening touches no other file: anything else in the directory is left alone.
//!
//! Segment names are zero-padded to 20 digits so that names sort like positions. Only the last
//! segment (the *tail*) is written; the others are *sealed* and change only when compaction
//! or erasure replaces one whole (temporary file, sync, rename, directory sync). A new segment is
//! written under a `.tmp` name, synced, renamed into place, and the directory synced, so a
//! `.log` file always has a complete header.
//!
//! # Decoding
//!
//! Decoding takes a byte slice and returns views into it. It checks every length against the
//! bytes actually present before using it, never allocates, and never panics, whatever the
//! input.

pub mod checkpoint;
pub mod copy_progress;
pub mod damage;
pub mod frame;
pub mod index_file;
pub mod index_snapshot;
pub mod postings;
pub mod record;
pub mod retention;
pub mod rewritten;
pub mod segment;
#[cfg(test)]
mod tests;

pub use checkpoint::*;
pub use copy_progress::*;
pub use damage::Damage;
pub use frame::*;
pub use index_file::*;
pub use index_snapshot::*;
pub use postings::*;
pub use record::*;
pub use retention::*;
pub use rewritten::*;
pub use segment::*;
