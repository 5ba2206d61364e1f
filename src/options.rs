//! [`Options`] for opening a store, and the [`Durability`] of appends.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::event::{EventData, RecordedEvent};
use crate::format::{FRAME_HEADER_LEN, MAX_FRAME_LEN, RECORD_HEADER_LEN};
#[cfg(feature = "test-hooks")]
use crate::hooks::{FaultPlan, TestHooks};
use crate::lifecycle::Retention;
use crate::upcast::Upcasters;

/// Smallest allowed segment size: 64 KiB.
pub const MIN_SEGMENT_SIZE: u64 = 64 << 10;
/// Largest allowed segment size: 1 GiB (record locations hold 32-bit offsets).
pub const MAX_SEGMENT_SIZE: u64 = 1 << 30;

/// When an append returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// After the bytes are on stable storage (`fdatasync`). The default.
    #[default]
    Fsync,
    /// After the bytes reach the operating system; a background thread syncs at least every
    /// [`Options::flush_interval`], and [`Store::sync`](crate::Store::sync) syncs at once.
    /// A process crash loses nothing; a power failure may lose what was written since the
    /// last sync that returned, and opening then keeps the synced prefix (and reports the cut
    /// in [`Store::open_report`](crate::Store::open_report)).
    Buffered,
}

/// How to open a store. Built like a sentence; each setting is also a public field, to read
/// back (or to set: every value is checked when the store opens):
///
/// ```
/// use annals::{Durability, Options};
/// use std::time::Duration;
///
/// let options = Options::default()
///     .segment_size(64 << 20)
///     .durability(Durability::Buffered)
///     .flush_interval(Duration::from_millis(5));
/// assert_eq!(options.segment_size, 64 << 20);
/// assert_eq!(options.durability, Durability::Buffered);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    #[cfg(feature = "test-hooks")]
    pub(crate) hooks: TestHooks,
    /// Bytes per segment file: see [`Options::segment_size()`].
    pub segment_size: u64,
    /// When appends return: see [`Options::durability()`].
    pub durability: Durability,
    /// Longest time between background syncs: see [`Options::flush_interval()`].
    pub flush_interval: Duration,
    /// Largest payload plus metadata of one event: see [`Options::max_event_size()`].
    pub max_event_size: usize,
    /// Events whose ids are remembered: see [`Options::dedup_window()`].
    pub dedup_window: u64,
    /// Retention of streams without their own: see [`Options::default_retention()`].
    pub default_retention: Retention,
    /// Compaction on a background thread: see [`Options::background_compaction()`].
    pub background_compaction: Option<BackgroundCompaction>,
    /// The upcasters, in the order they were added: see [`Options::upcaster()`].
    pub(crate) upcasters: Upcasters,
}

/// How often a background thread compacts the store, and how much I/O it may use: see
/// [`Options::background_compaction()`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackgroundCompaction {
    /// Time between the end of one compaction and the start of the next.
    pub every: Duration,
    /// Bytes per second it may read and write, on average over each compaction.
    pub max_bytes_per_sec: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            #[cfg(feature = "test-hooks")]
            hooks: TestHooks::default(),
            segment_size: 256 << 20,
            durability: Durability::Fsync,
            flush_interval: Duration::from_millis(10),
            max_event_size: 16 << 20,
            dedup_window: 1_000_000,
            default_retention: Retention::default(),
            background_compaction: None,
            upcasters: Upcasters::default(),
        }
    }
}

impl Options {
    /// Bytes per segment file, from 64 KiB to 1 GiB (default 256 MiB). An append larger than
    /// a segment gets a segment of its own.
    #[must_use]
    pub fn segment_size(mut self, bytes: u64) -> Self {
        self.segment_size = bytes;
        self
    }

    /// When appends return (default [`Durability::Fsync`]).
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Longest time between background syncs under [`Durability::Buffered`] (default 10 ms).
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Largest payload plus metadata of one event, in bytes (default 16 MiB, at most 512 MiB).
    #[must_use]
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// How many of the most recent events have their ids remembered for idempotent appends
    /// (default 1,000,000).
    #[must_use]
    pub fn dedup_window(mut self, events: u64) -> Self {
        self.dedup_window = events;
        self
    }

    /// The retention of every stream that has none of its own (default: none, keep
    /// everything), for log-style use: e.g. `Retention::default().max_age(..)` hides events
    /// older than that from stream reads. Not stored: it applies while the store is open with
    /// these options. A stream's own limits ([`Store::set_retention`](crate::Store::set_retention))
    /// take precedence over the ones it sets.
    #[must_use]
    pub fn default_retention(mut self, retention: Retention) -> Self {
        self.default_retention = retention;
        self
    }

    /// Compacts the store on a background thread (default: never): every `every`, it does
    /// what [`Store::compact`](crate::Store::compact) does, reading and writing at most
    /// `max_bytes_per_sec` on average (it sleeps between segments to keep to it), so that
    /// appends and reads keep the disk. It stops between two segments when the store closes.
    /// [`Store::last_background_compaction`](crate::Store::last_background_compaction) says
    /// how the last run went.
    ///
    /// ```
    /// use annals::Options;
    /// use std::time::Duration;
    ///
    /// let options = Options::default().background_compaction(Duration::from_secs(600), 20 << 20);
    /// assert_eq!(options.background_compaction.map(|b| b.max_bytes_per_sec), Some(20 << 20));
    /// ```
    #[must_use]
    pub fn background_compaction(mut self, every: Duration, max_bytes_per_sec: u64) -> Self {
        self.background_compaction = Some(BackgroundCompaction {
            every,
            max_bytes_per_sec,
        });
        self
    }

    /// Adds an upcaster for events of type `event_type` (an "active" migration): every read
    /// that yields a [`RecordedEvent`] (stream reads both ways, `read_all`, `read_by_type`,
    /// `read_category`, subscriptions) passes such an event to `upcast`, and yields what it
    /// returns instead (its type, payload and metadata; position, stream, version, id and
    /// timestamp stay the stored ones), or the event as stored for `None`. The stored bytes
    /// never change; zero-copy reads ([`Store::scan_all`](crate::Store::scan_all),
    /// [`Store::replay_partitioned`](crate::Store::replay_partitioned)) see them as stored.
    ///
    /// Upcasters run in the order they were added, each at most once on an event; when one
    /// returns a new type, the ones added for that type (and not run yet) run on its result,
    /// so `v1 → v2` and `v2 → v3` chain. One that panics, or returns a type of 0 or more
    /// than 255 bytes, makes that read fail with [`Error::Upcast`](crate::Error::Upcast)
    /// naming the event; the store goes on.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Options, RecordedEvent, Store};
    ///
    /// let options = Options::default().upcaster("AgreementAccepted", |ev: &RecordedEvent| {
    ///     // An agreement without a revision is revision 1.
    ///     (ev.payload() == b"{}").then(|| EventData::new("AgreementAccepted", br#"{"revision":1}"#.to_vec()))
    /// });
    /// let store = Store::open_with(dir.path(), options)?;
    /// store.append("user-1", ExpectedVersion::Any, [EventData::new("AgreementAccepted", b"{}".to_vec())])?;
    /// let ev = store.read_stream("user-1", 0).next().transpose()?.expect("one event");
    /// assert_eq!(ev.payload(), br#"{"revision":1}"#);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn upcaster(
        mut self,
        event_type: impl Into<String>,
        upcast: impl Fn(&RecordedEvent) -> Option<EventData> + Send + Sync + 'static,
    ) -> Self {
        self.upcasters.push(event_type.into(), Arc::new(upcast));
        self
    }

    /// Replaces the hash of stream names used by the in-memory index. For tests that force
    /// hash collisions (streams must never mix, whatever the hash); not part of the stable API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    #[must_use]
    pub fn stream_hasher(mut self, hasher: fn(&str) -> u64) -> Self {
        self.hooks.stream_hasher = Some(hasher);
        self
    }

    /// The stream-name hash the tests chose, if any.
    pub(crate) fn custom_stream_hasher(&self) -> Option<fn(&str) -> u64> {
        #[cfg(feature = "test-hooks")]
        return self.hooks.stream_hasher;
        #[cfg(not(feature = "test-hooks"))]
        None
    }

    /// Makes chosen `write` or `fdatasync` calls of the writer fail. For tests of failure
    /// handling; not part of the stable API.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    #[must_use]
    pub fn fault_plan(mut self, plan: FaultPlan) -> Self {
        self.hooks.fault_plan = plan;
        self
    }

    /// Checks that every setting is in range.
    pub(crate) fn validate(&self) -> Result<()> {
        if !(MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&self.segment_size) {
            return Err(Error::InvalidInput(format!(
                "segment_size {} is outside {MIN_SEGMENT_SIZE}..={MAX_SEGMENT_SIZE} bytes",
                self.segment_size
            )));
        }
        let largest = MAX_FRAME_LEN / 2 - FRAME_HEADER_LEN - RECORD_HEADER_LEN;
        if self.max_event_size == 0 || self.max_event_size > largest {
            return Err(Error::InvalidInput(format!(
                "max_event_size {} is outside 1..={largest} bytes",
                self.max_event_size
            )));
        }
        if self.flush_interval.is_zero() {
            return Err(Error::InvalidInput(
                "flush_interval must be longer than zero".into(),
            ));
        }
        if let Some(b) = &self.background_compaction {
            if b.every.is_zero() || b.max_bytes_per_sec == 0 {
                return Err(Error::InvalidInput(
                    "background_compaction needs an interval and a rate above zero".into(),
                ));
            }
        }
        self.default_retention.validate()
    }
}
