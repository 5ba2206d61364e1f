//! # annals — an embedded event store
//!
//! annals is the log of an event-sourced application, linked into its process the way SQLite
//! is: an append-only, crash-safe, checksummed log of events grouped into streams.
//!
//! ```
//! use annals::{EventData, ExpectedVersion, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path())?;
//!
//! // Append two events to a new stream, atomically and durably.
//! let r = store.append("order-42", ExpectedVersion::NoStream, [
//!     EventData::new("OrderPlaced", br#"{"total":12}"#.to_vec()),
//!     EventData::new("ItemAdded", br#"{"sku":"A1"}"#.to_vec()).id(0x1234),
//! ])?;
//! assert_eq!((r.first_position, r.last_position), (0, 1));
//! assert_eq!((r.first_version, r.last_version), (0, 1));
//!
//! // Appending with a stale expected version writes nothing.
//! let stale = store.append("order-42", ExpectedVersion::Exact(0), [
//!     EventData::new("OrderShipped", b"{}".to_vec()),
//! ]);
//! assert!(matches!(stale, Err(annals::Error::WrongExpectedVersion { actual: Some(1), .. })));
//!
//! // Replay everything in position order.
//! let types: Vec<String> = store
//!     .read_all(0)
//!     .map(|ev| ev.map(|ev| ev.event_type().to_string()))
//!     .collect::<annals::Result<_>>()?;
//! assert_eq!(types, ["OrderPlaced", "ItemAdded"]);
//! assert_eq!(store.stream_version("order-42"), Some(1));
//! store.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## What it offers
//!
//! - [`Store::append`]: atomic, durable appends to a stream, with optimistic concurrency
//!   ([`ExpectedVersion`]) and idempotency by event id; appends from many threads share one
//!   `write` and one `fdatasync` (group commit).
//! - [`Store::append_async`]: the same as a future, on any executor, holding no thread while
//!   it waits. Feature `async`: [`Subscription`] is a `futures_core::Stream`. Feature
//!   `serde`: typed events, `EventData::json` and `RecordedEvent::json`.
//! - [`Store::read_stream`] and [`Store::read_stream_backward`]: one stream through its
//!   sparse index, never a scan of the log.
//! - [`Store::read_all`] (owned events) and [`Store::scan_all`] (zero-copy): replays.
//! - [`Store::subscribe_all`] and [`Store::subscribe_stream`]: catch up, then follow live
//!   appends; [`Store::save_checkpoint`]: durable consumer cursors.
//! - [`Store::delete_stream`] and [`Store::set_retention`]: soft deletes and retention rules,
//!   applied by stream reads at once; [`Store::compact`] removes what they hide from the
//!   files, and [`Store::erase_stream`] removes every byte of a stream (GDPR), both online.
//!
//! ## Guarantees
//!
//! - One [`Store::append`] is one checksummed frame written by one `write`: after any crash
//!   either all of its events are readable or none is.
//! - Under [`Durability::Fsync`] (the default) an append returns after `fdatasync`: an
//!   acknowledged append survives a crash or power failure.
//! - Positions are dense over the store, versions dense per stream, until compaction or
//!   erasure removes events: their positions become holes that every read skips in order,
//!   and every other event keeps its position, version and bytes.
//! - Opening cuts only what nothing proves was synced (a write a crash tore, or under
//!   [`Durability::Buffered`] pages a power loss dropped after the last sync) and reports it
//!   in [`Store::open_report`]; damage to synced data, or a lost segment file, is
//!   [`Error::Corrupt`] naming the file and offset, never a panic, never a shorter log, never
//!   wrong bytes returned as an event. How: `docs/design.md` in the repository.
//! - A store directory is open in at most one place at a time ([`Error::Locked`]); the OS lock
//!   dies with the process, `kill -9` included.
//! - Opening takes about the same time for a thousand streams as for a million: an index
//!   snapshot (`INDEX`, a checksummed cache read through a map) holds the stream index and
//!   the dedup window, and opening indexes only the events after it
//!   ([`OpenReport::snapshot_position`]).
//!
//! Segment files and the index snapshot are mapped into memory for reading: another program
//! that truncates or rewrites the files of an open store is not supported.
//!
//! The byte layout of every file is documented in [`format`](mod@format).

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

// From the bottom up: each module imports only those before it, never one after it. Each
// folder's module doc says what it owns.

// Every byte layout.
pub mod format;

// Types every layer shares.
mod error;
mod event;
#[cfg(feature = "test-hooks")]
mod hooks;
mod options;
mod upcast;

// The subsystems.
mod fs;

mod log;

mod index;
// Retention and soft deletes: below the readers that apply them.
mod lifecycle;

mod recover;

mod read;

mod subscribe;

mod write;

mod backup;

// Compaction and erasure: above the writer they rewrite through.
mod compact;

// Reads the files the way recovery does, without opening a store.
mod verify;
// Above read and subscribe: the store ties them together.
mod store;
// A passive migration, built on the store.
mod copy;
// Appends as futures, built on the store.
mod append_async;
// Typed events: payloads as JSON.
#[cfg(feature = "serde")]
mod json;

#[cfg(test)]
mod tests;

pub use append_async::AppendFuture;
pub use backup::BackupReport;
pub use compact::{CompactReport, EraseReport, Reclaimable};
pub use copy::{CopyCheck, CopyReport};
pub use error::{Error, Result};
pub use event::{AppendResult, EventData, EventRef, ExpectedVersion, RecordedEvent};
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub use hooks::FaultPlan;
pub use lifecycle::Retention;
pub use options::{BackgroundCompaction, Durability, Options, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
pub use read::{ReadAll, ReadIndexed, ReadStream, ReadStreamBackward};
pub use recover::{IndexRebuild, OpenReport, TailCut};
pub use store::{Stats, Store};
pub use subscribe::{PartitionedSubscription, Subscription};
pub use verify::{verify, verify_with_progress, Finding, VerifyReport};
