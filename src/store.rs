//! [`Store`]: the handle applications hold. Opening, appending, reading, syncing, closing.

use std::fmt;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::backup::{self, BackupReport};
use crate::compact::{self, Background, CompactReport, EraseReport, Maintainer, Pace, Reclaimable};
use crate::error::Result;
use crate::event::{AppendResult, EventData, EventRef, ExpectedVersion, RecordedEvent};
use crate::fs::dir::DirLock;
use crate::index::persist::fingerprint;
use crate::index::postings::Key;
use crate::index::{default_stream_hash, Found};
use crate::lifecycle::{Retention, Retentions};
use crate::log::{CommitSignal, Snapshot};
use crate::options::Options;
use crate::read::{LogView, ReadAll, ReadIndexed};
use crate::read::{ReadStream, ReadStreamBackward};
use crate::recover::{recover, Access, OpenReport};
use crate::subscribe::checkpoint;
use crate::subscribe::{PartitionedSubscription, Subscription};
use crate::write::commit::GroupCommit;
use crate::write::validate::{check_name, validate, Request};
use crate::write::writer::Writer;

/// An open event store: a cheap handle; clones share one engine. All methods take `&self`.
///
/// The directory stays locked until the last handle is closed or dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Declared first so it stops first: the background compaction thread, if any.
    background: Option<Background>,
    dir: PathBuf,
    options: Options,
    report: OpenReport,
    /// `None` when opened read-only.
    commit: Option<Arc<GroupCommit>>,
    /// The committed log, the stream index and the commit signal, as the writer publishes them.
    view: LogView,
    /// Every stream's retention rules and soft deletes.
    retention: Arc<Retentions>,
    /// Checkpoints are saved one at a time.
    checkpoint_lock: Mutex<()>,
    /// A read-only handle refreshes one at a time.
    refresh_lock: Mutex<()>,
    /// What compaction and erasure work on; `None` when opened read-only.
    maintainer: Option<Maintainer>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Before the writer closes: async appends still queued (their futures dropped) are
        // committed, and the committer thread lets go of the writer.
        if let Some(commit) = &self.commit {
            commit.stop_committer();
        }
    }
}

impl Store {
    /// Opens the store in `dir` with default [`Options`], creating the directory if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(dir, Options::default())
    }

    /// Opens the store in `dir`, creating the directory if missing.
    ///
    /// Fails with [`Error::Locked`](crate::Error::Locked) if the store is open already (in this
    /// process or another), and with [`Error::Corrupt`](crate::Error::Corrupt) naming the file
    /// if data that had been synced is damaged or a segment file or the manifest is missing.
    /// The end of a write that a crash interrupted before it was synced is cut and described
    /// in [`Store::open_report`]. Opening works on a full disk.
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let lock = DirLock::acquire(&dir)?;
        checkpoint::remove_leftovers(&dir)?;
        let recovered = recover(
            &dir,
            options.segment_size,
            options.dedup_window,
            options
                .custom_stream_hasher()
                .unwrap_or(default_stream_hash),
            Access::ReadWrite,
        )?;
        let report = recovered.report.clone();
        let writer = Writer::new(dir.clone(), options.clone(), recovered)?;
        let (committed, index, signal) = writer.shared();
        let view = LogView::new(&dir, committed, index, signal, options.upcasters.clone());
        Store::with_parts(
            dir,
            options,
            report,
            Some(GroupCommit::new(writer, lock)),
            view,
        )
    }

    /// Opens the store in `dir` for reading only, without taking its lock: it works while
    /// another process (or this one) has the store open for writing, and never writes a
    /// byte under `dir` (checkpoints aside: [`Store::save_checkpoint`] still works, so that
    /// a consumer beside the writer can keep its cursor).
    ///
    /// The handle sees the log as it was when it opened: every whole frame, that is every
    /// append the writer had written by then (under [`Durability::Fsync`](crate::Durability)
    /// that may include the batch whose `fdatasync` was running, which a power loss could
    /// still take back). An incomplete or torn frame at the end of the tail is treated as the
    /// end and reported in [`OpenReport::unread_tail`], never cut. Opening again sees what
    /// was appended since, and so does the handle after [`Store::refresh`] (which also wakes
    /// its subscriptions). (Two rare moments can cut a file under a read-only handle: a
    /// writer whose `write` or `fdatasync` fails zeroes that batch's frame, which the handle
    /// may have seen, and a writer's opening cuts a torn tail right where a read-only opening
    /// running at that instant looks; reading there is then
    /// [`Error::Corrupt`](crate::Error::Corrupt) or, for an instant, a `SIGBUS`.) [`Store::append`] fails with
    /// [`Error::ReadOnly`](crate::Error::ReadOnly). A directory that holds no store is
    /// [`Error::InvalidInput`](crate::Error::InvalidInput); a missing one is
    /// [`Error::Io`](crate::Error::Io).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let writer = Store::open(dir.path())?;
    /// writer.append("order-1", ExpectedVersion::Any, [EventData::new("Placed", b"{}".to_vec())])?;
    /// let reader = Store::open_read_only(dir.path())?;   // beside the open writer
    /// assert_eq!(reader.next_position(), 1);
    /// assert!(matches!(
    ///     reader.append("order-1", ExpectedVersion::Any, [EventData::new("Paid", b"{}".to_vec())]),
    ///     Err(annals::Error::ReadOnly { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_read_only_with(dir, Options::default())
    }

    /// [`Store::open_read_only`] with `options`: those that apply to reading do
    /// ([`Options::upcaster`], [`Options::default_retention`]); the others are ignored.
    pub fn open_read_only_with(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let (committed, streams, report) = recover_read_only(&dir)?.into_read_only();
        let next = committed.next_position;
        let view = LogView::new(
            &dir,
            Arc::new(RwLock::new(committed)),
            Arc::new(RwLock::new(streams)),
            Arc::new(CommitSignal::new(next)),
            options.upcasters.clone(),
        );
        Store::with_parts(dir, options, report, None, view)
    }

    /// Brings a read-only handle up to date with the log as the writer has it now (and its
    /// retention rules), as a new [`Store::open_read_only`] would see it, and wakes its
    /// subscriptions; returns the new [`Store::next_position`]. Reads that started before
    /// go on reading what they started with. On a writable handle, which is always up to
    /// date, it only returns the next position.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let writer = Store::open(dir.path())?;
    /// let reader = Store::open_read_only(dir.path())?;
    /// writer.append("order-1", ExpectedVersion::Any, [EventData::new("Placed", b"{}".to_vec())])?;
    /// assert_eq!(reader.next_position(), 0);
    /// assert_eq!(reader.refresh()?, 1);
    /// assert_eq!(reader.stream_version("order-1"), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refresh(&self) -> Result<u64> {
        if self.inner.commit.is_some() {
            return Ok(self.next_position());
        }
        let _one_at_a_time = self.inner.refresh_lock.lock();
        let (committed, streams, _) = recover_read_only(&self.inner.dir)?.into_read_only();
        self.inner.retention.reload()?;
        let next = committed.next_position;
        self.inner.view.replace(committed, streams);
        Ok(next)
    }

    fn with_parts(
        dir: PathBuf,
        options: Options,
        report: OpenReport,
        commit: Option<GroupCommit>,
        view: LogView,
    ) -> Result<Store> {
        let retention = Arc::new(Retentions::load(&dir, options.default_retention)?);
        let commit = commit.map(Arc::new);
        let maintainer = commit.as_ref().map(|commit| Maintainer {
            dir: dir.clone(),
            commit: Arc::clone(commit),
            view: view.clone(),
            retention: Arc::clone(&retention),
            one_at_a_time: Arc::new(Mutex::new(())),
        });
        let background = match (&maintainer, options.background_compaction) {
            (Some(m), Some(config)) => Some(Background::start(m.clone(), config)?),
            _ => None,
        };
        Ok(Store {
            inner: Arc::new(Inner {
                background,
                dir,
                options,
                report,
                commit,
                view,
                retention,
                checkpoint_lock: Mutex::new(()),
                refresh_lock: Mutex::new(()),
                maintainer,
            }),
        })
    }

    /// Whether this handle was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.inner.commit.is_none()
    }

    /// The group commit of a writable handle; [`Error::ReadOnly`](crate::Error::ReadOnly) for a
    /// read-only one.
    pub(crate) fn commit(&self) -> Result<&Arc<GroupCommit>> {
        self.inner
            .commit
            .as_ref()
            .ok_or_else(|| crate::Error::ReadOnly {
                dir: self.inner.dir.clone(),
            })
    }

    /// Appends `events` to `stream` atomically: after any crash either all of them are
    /// readable or none is.
    ///
    /// Under [`Durability::Fsync`](crate::Durability::Fsync) it returns once the events are on
    /// stable storage. Fails with
    /// [`Error::WrongExpectedVersion`](crate::Error::WrongExpectedVersion) if the stream's last
    /// version does not satisfy `expected`, and with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for an empty append, a stream name
    /// or event type outside 1..=255 bytes, or an event over `max_event_size`; nothing is
    /// written then.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: impl IntoIterator<Item = EventData>,
    ) -> Result<AppendResult> {
        let request = self.request(stream, expected, events.into_iter().collect())?;
        let mut results = self.commit()?.append(vec![request]);
        results.pop().unwrap_or_else(|| {
            Err(crate::Error::Poisoned {
                cause: "internal error: an append got no result".into(),
            })
        })
    }

    /// One append, checked: see [`Store::append`].
    pub(crate) fn request(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<EventData>,
    ) -> Result<Request> {
        let frame_len = validate(stream, &events, self.inner.options.max_event_size)?;
        Ok(Request {
            stream: stream.to_string(),
            expected,
            events,
            frame_len,
        })
    }

    /// Appends to many streams in one go: each `(stream, expected, events)` is one append with
    /// [`Store::append`]'s semantics, atomic on its own and checked in order (each against
    /// the log and the appends before it), and all of them are written together: one `write`
    /// and, under [`Durability::Fsync`](crate::Durability::Fsync), one `fdatasync`. A bulk load
    /// of events of many streams (an import, a migration, a mirror) goes as fast as one of a
    /// single stream (a batch that fills the tail segment takes a second `write` and sync in
    /// the next). Returns one result per append, in order; a failed append (a wrong
    /// expected version, say, or invalid input, which is found before anything is written)
    /// does not stop the others. [`Error::ReadOnly`](crate::Error::ReadOnly) on a read-only
    /// handle.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let store = Store::open(dir.path())?;
    /// let results = store.append_many([
    ///     ("order-1", ExpectedVersion::NoStream, vec![EventData::new("Placed", b"{}".to_vec())]),
    ///     ("order-2", ExpectedVersion::NoStream, vec![EventData::new("Placed", b"{}".to_vec())]),
    ///     ("order-1", ExpectedVersion::NoStream, vec![EventData::new("Placed", b"{}".to_vec())]),
    /// ])?;
    /// assert_eq!(results[1].as_ref().map(|r| r.first_position).ok(), Some(1));
    /// assert!(matches!(results[2], Err(annals::Error::WrongExpectedVersion { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_many<S, E>(
        &self,
        appends: impl IntoIterator<Item = (S, ExpectedVersion, E)>,
    ) -> Result<Vec<Result<AppendResult>>>
    where
        S: AsRef<str>,
        E: IntoIterator<Item = EventData>,
    {
        let commit = self.commit()?;
        let mut invalid = Vec::new();
        let mut requests = Vec::new();
        for (i, (stream, expected, events)) in appends.into_iter().enumerate() {
            match self.request(stream.as_ref(), expected, events.into_iter().collect()) {
                Ok(request) => requests.push(request),
                Err(e) => invalid.push((i, e)),
            }
        }
        let mut committed = commit.append(requests).into_iter();
        let mut invalid = invalid.into_iter().peekable();
        let mut results = Vec::with_capacity(committed.len() + invalid.len());
        loop {
            if let Some((_, e)) = invalid.next_if(|(i, _)| *i == results.len()) {
                results.push(Err(e));
            } else if let Some(result) = committed.next() {
                results.push(result);
            } else {
                return Ok(results);
            }
        }
    }

    /// Every event from `from` on, in position order, as committed when the call is made.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = annals::Store::open(dir.path())?;
    /// for event in store.read_all(0) {
    ///     let event = event?;
    ///     println!("{} {} {}", event.position(), event.stream(), event.event_type());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_all(&self, from: u64) -> ReadAll {
        self.inner.view.read_all(from)
    }

    /// Calls `f` with every event from `from` on, in position order, decoded in place in the
    /// mapped segments: checksums verified, nothing allocated per event. The fast path for
    /// replays; [`Store::read_all`] is the owned, iterator form. `f` stops the scan early by
    /// returning [`ControlFlow::Break`]. Returns how many events `f` was given.
    ///
    /// ```
    /// use std::ops::ControlFlow;
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// # store.append("s", ExpectedVersion::Any, (0..10).map(|i| EventData::new("E", vec![i])))?;
    /// let mut bytes = 0;
    /// let seen = store.scan_all(0, |event| {
    ///     bytes += event.payload().len();
    ///     ControlFlow::Continue(())
    /// })?;
    /// assert_eq!((seen, bytes), (10, 10));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scan_all(
        &self,
        from: u64,
        mut f: impl FnMut(EventRef<'_>) -> ControlFlow<()>,
    ) -> Result<u64> {
        let mut events = self.inner.view.read_all(from);
        let mut seen = 0;
        while let Some(view) = events.next_view() {
            let view = view?;
            seen += 1;
            if f(EventRef(view)).is_break() {
                break;
            }
        }
        Ok(seen)
    }

    /// The events of type `event_type` from position `from` on, in position order, as
    /// committed when the call is made, through the type index: the cost grows with the events
    /// it returns (and the segments it looks into), not with the store. Positions that
    /// compaction or erasure removed are skipped, as by [`Store::read_all`]. Each sealed
    /// segment's type and category index is a file beside it (`{base}.tix`, written when the
    /// segment is sealed); the tail is indexed as it is read, each event once.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// store.append("order-1", ExpectedVersion::Any, [EventData::new("OrderPlaced", vec![])])?;
    /// store.append("order-1", ExpectedVersion::Any, [EventData::new("OrderPaid", vec![])])?;
    /// store.append("order-2", ExpectedVersion::Any, [EventData::new("OrderPlaced", vec![])])?;
    /// let placed: Vec<u64> = store.read_by_type("OrderPlaced", 0).map(|e| e.map(|e| e.position())).collect::<annals::Result<_>>()?;
    /// assert_eq!(placed, [0, 2]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_by_type(&self, event_type: &str, from: u64) -> ReadIndexed {
        self.inner
            .view
            .read_indexed(Key::event_type(event_type), from)
    }

    /// The events of the streams in `category` (streams named `{category}-…`: the part of the
    /// name before its first `-`, EventStoreDB's convention; a name without `-` has no
    /// category) from position `from` on, in position order, through the category index:
    /// see [`Store::read_by_type`].
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// for stream in ["order-1", "cart-9", "order-2", "order"] {
    ///     store.append(stream, ExpectedVersion::Any, [EventData::new("E", vec![])])?;
    /// }
    /// let orders: Vec<String> = store.read_category("order", 0).map(|e| e.map(|e| e.stream().to_string())).collect::<annals::Result<_>>()?;
    /// assert_eq!(orders, ["order-1", "order-2"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_category(&self, category: &str, from: u64) -> ReadIndexed {
        self.inner.view.read_indexed(Key::category(category), from)
    }

    /// The first position whose event has a timestamp at or after `time` (microseconds since
    /// the Unix epoch, as [`RecordedEvent::timestamp`](crate::RecordedEvent::timestamp)), or
    /// [`Store::next_position`] if no event has: where to start reading "from a point in
    /// time" (`read_all(store.position_at(t)?)`).
    ///
    /// It is defined on the store's commit order: annals stamps each event when its append
    /// is committed, so timestamps do not go down from one position to the next (unless the
    /// system clock steps back), and the answer is exact. Timestamps given with
    /// [`EventData::timestamp`] (imports, migrations) may go down: the answer is then *a*
    /// position where the timestamps cross `time` (binary search), not necessarily the first
    /// event stamped after it. Costs a binary search over the segments' first events and a
    /// walk through one segment.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// for t in [100, 200, 300] {
    ///     store.append("s", ExpectedVersion::Any, [EventData::new("E", vec![]).timestamp(t)])?;
    /// }
    /// assert_eq!(store.position_at(150)?, 1);
    /// assert_eq!(store.position_at(300)?, 2);
    /// assert_eq!(store.position_at(301)?, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position_at(&self, time: u64) -> Result<u64> {
        crate::read::position_at(&self.inner.view.snapshot(), time)
    }

    /// Replays every event from `from` up to the position committed when it starts on
    /// `workers` threads: each event is handed to `handler` exactly once, with the worker's
    /// number (`0..workers`), and the events whose `key` is equal go to the same worker, in
    /// position order (a projection partitioned by school, customer or stream rebuilds each
    /// partition in order, several at a time). One thread reads the log (every checksum
    /// verified) and calls `key`; the handlers see the zero-copy [`EventRef`]. Returns how
    /// many events were handled. Fails with [`Error::InvalidInput`](crate::Error::InvalidInput)
    /// for zero workers and with [`Error::Corrupt`](crate::Error::Corrupt) on damage (the
    /// events before it were handled); a handler that panics makes this panic.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// for n in 0..100u8 {
    ///     let school = format!("school-{}", n % 4);
    ///     store.append(&school, ExpectedVersion::Any, [EventData::new("Answered", vec![n])])?;
    /// }
    /// let per_worker: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
    /// let handled = store.replay_partitioned(0, 2, |ev| ev.stream().to_string(), |worker, ev| {
    ///     per_worker[worker].fetch_add(u64::from(ev.payload()[0]), Ordering::Relaxed);
    /// })?;
    /// assert_eq!(handled, 100);
    /// let total: u64 = per_worker.iter().map(|n| n.load(Ordering::Relaxed)).sum();
    /// assert_eq!(total, (0..100).sum::<u64>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replay_partitioned<K: std::hash::Hash>(
        &self,
        from: u64,
        workers: usize,
        key: impl Fn(&EventRef<'_>) -> K,
        handler: impl Fn(usize, &EventRef<'_>) + Sync,
    ) -> Result<u64> {
        crate::read::replay_partitioned(self.inner.view.read_all(from), workers, key, handler)
    }

    /// The events of `stream` from `from_version` on, oldest first, as committed when the
    /// call is made. Empty if the stream has no events at or after `from_version`.
    ///
    /// Costs one index lookup plus one record read per event (and fewer than 32 more to reach
    /// `from_version`), however large the store.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// store.append("order-42", ExpectedVersion::NoStream, [
    ///     EventData::new("OrderPlaced", b"{}".to_vec()),
    ///     EventData::new("OrderShipped", b"{}".to_vec()),
    /// ])?;
    /// let types: Vec<String> = store
    ///     .read_stream("order-42", 1)
    ///     .map(|ev| ev.map(|ev| ev.event_type().to_string()))
    ///     .collect::<annals::Result<_>>()?;
    /// assert_eq!(types, ["OrderShipped"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_stream(&self, stream: &str, from_version: u64) -> ReadStream {
        let retention = self.inner.retention.get(stream);
        self.inner
            .view
            .read_stream_until(stream, from_version, &retention)
            .0
    }

    /// The events of `stream` newest first: from version `from` (or the last version, for
    /// `None` or a version past the end) down to version 0.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// # store.append("s", ExpectedVersion::Any, (0..5).map(|i| EventData::new("E", vec![i])))?;
    /// let versions: Vec<u64> = store
    ///     .read_stream_backward("s", Some(2))
    ///     .map(|ev| ev.map(|ev| ev.version()))
    ///     .collect::<annals::Result<_>>()?;
    /// assert_eq!(versions, [2, 1, 0]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_stream_backward(&self, stream: &str, from: Option<u64>) -> ReadStreamBackward {
        let retention = self.inner.retention.get(stream);
        self.lookup(stream, |snapshot, found| {
            ReadStreamBackward::new(snapshot, stream, from, found, &retention)
                .map(|read| read.upcasting(self.inner.view.upcasters().clone()))
        })
        .unwrap_or_else(|e| ReadStreamBackward::failed(self.snapshot(), e))
    }

    /// The last version of `stream`, `None` if it has no events. A damaged record met while
    /// finding the stream also gives `None` here; [`Store::try_stream_version`] reports it.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        self.try_stream_version(stream).ok().flatten()
    }

    /// The last version of `stream`, `None` if it has no events, or
    /// [`Error::Corrupt`](crate::Error::Corrupt) if a record met while finding the stream is
    /// damaged.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// assert_eq!(store.try_stream_version("order-42")?, None);
    /// store.append("order-42", ExpectedVersion::NoStream, [EventData::new("Placed", vec![])])?;
    /// assert_eq!(store.try_stream_version("order-42")?, Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_stream_version(&self, stream: &str) -> Result<Option<u64>> {
        self.lookup(stream, |_, found| Ok(found.map(|f| f.head.last_version)))
    }

    fn lookup<T>(
        &self,
        stream: &str,
        f: impl FnOnce(Snapshot, Option<Found<'_>>) -> Result<T>,
    ) -> Result<T> {
        self.inner.view.lookup(stream, f)
    }

    /// The committed log now.
    fn snapshot(&self) -> Snapshot {
        self.inner.view.snapshot()
    }

    /// Every committed event from `from_position` on, then every new one as it is committed:
    /// in position order, no gap, no duplicate. Filter with
    /// [`Subscription::event_types`] and [`Subscription::stream_prefix`].
    pub fn subscribe_all(&self, from_position: u64) -> Subscription {
        Subscription::all(self.inner.view.clone(), self.keep_alive(), from_position)
    }

    /// Follows the log from the checkpoint `checkpoint` (from the start if it has none) on
    /// `workers` threads until stopped: each event goes to `handler` on the worker its `key`
    /// picks, the events of one key to one worker in position order (a projection
    /// partitioned by school rebuilds and then follows each school in order, several at a
    /// time). One checkpoint is saved every 100 ms and when it stops: it never passes an event
    /// that some worker has not finished, so a restart after a crash handles every event at
    /// least once (those after the last save maybe twice). Works on read-only handles too
    /// (beside the writing process). Fails with
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) for zero workers or a bad
    /// checkpoint name.
    ///
    /// ```
    /// # use annals::{EventData, ExpectedVersion, Store};
    /// # let dir = tempfile::tempdir()?;
    /// # let store = Store::open(dir.path())?;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    ///
    /// for n in 0..50u8 {
    ///     store.append(&format!("school-{}", n % 5), ExpectedVersion::Any, [EventData::new("Answered", vec![n])])?;
    /// }
    /// let sum = Arc::new(AtomicU64::new(0));
    /// let s = Arc::clone(&sum);
    /// let sub = store.subscribe_partitioned("scores", 2, |ev| ev.stream().to_string(), move |_, ev| {
    ///     s.fetch_add(u64::from(ev.payload()[0]), Ordering::Relaxed);
    /// })?;
    /// while sub.handled() < 50 { std::thread::sleep(std::time::Duration::from_millis(5)); }
    /// assert_eq!(sub.stop()?, 50);                       // the checkpoint saved at the end
    /// assert_eq!(sum.load(Ordering::Relaxed), (0..50).sum::<u64>());
    /// assert_eq!(store.checkpoint("scores")?, Some(50));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_partitioned<K: std::hash::Hash>(
        &self,
        checkpoint: &str,
        workers: usize,
        key: impl Fn(&RecordedEvent) -> K + Send + 'static,
        handler: impl Fn(usize, &RecordedEvent) + Send + Sync + 'static,
    ) -> Result<PartitionedSubscription> {
        let from = self.checkpoint(checkpoint)?.unwrap_or(0);
        let store = self.clone();
        let name = checkpoint.to_string();
        let save = move |position| store.save_checkpoint(&name, position);
        PartitionedSubscription::start(self.subscribe_all(from), workers, key, handler, save)
    }

    /// The events of `stream` from `from_version` on (read through the stream index), then
    /// every new one as it is committed.
    pub fn subscribe_stream(&self, stream: &str, from_version: u64) -> Subscription {
        Subscription::stream(
            self.inner.view.clone(),
            self.keep_alive(),
            stream,
            from_version,
        )
    }

    /// What keeps the store open while a subscription lives.
    fn keep_alive(&self) -> Arc<dyn Send + Sync> {
        Arc::clone(&self.inner) as Arc<dyn Send + Sync>
    }

    /// The position the next event will get: every position below it is committed.
    pub fn next_position(&self) -> u64 {
        self.inner.view.next_position()
    }

    /// Puts every append that has returned on stable storage (a no-op in effect under
    /// [`Durability::Fsync`](crate::Durability::Fsync), and on a read-only handle).
    pub fn sync(&self) -> Result<()> {
        match &self.inner.commit {
            Some(commit) => commit.writer().sync(),
            None => Ok(()),
        }
    }

    /// Syncs and gives up this handle. The directory is released when the last handle is gone.
    pub fn close(self) -> Result<()> {
        self.sync()
    }

    /// What opening the store found: segments, events, and any torn tail that was cut.
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
    }

    /// Saves `position` as the durable checkpoint of consumer `name` (1 to 128 characters
    /// of `A-Z a-z 0-9 _ - .`): atomically (a crash leaves the old or the new value) and
    /// durably (on stable storage when this returns). Save the position *after* the last
    /// event handled: `event.position() + 1`, or [`Subscription::position`].
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let store = annals::Store::open(dir.path())?;
    /// assert_eq!(store.checkpoint("projector-a")?, None);
    /// store.save_checkpoint("projector-a", 42)?;
    /// assert_eq!(store.checkpoint("projector-a")?, Some(42));
    /// assert_eq!(store.checkpoints()?, [("projector-a".to_string(), 42)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_checkpoint(&self, name: &str, position: u64) -> Result<()> {
        let _one_at_a_time = self.inner.checkpoint_lock.lock();
        checkpoint::save(&self.inner.dir, name, position)
    }

    /// The checkpoint of consumer `name`, `None` if it never saved one.
    pub fn checkpoint(&self, name: &str) -> Result<Option<u64>> {
        checkpoint::load(&self.inner.dir, name)
    }

    /// Every saved checkpoint that reads back, as `(name, position)` sorted by name. A damaged
    /// checkpoint file does not hide the others: it is left out here, and
    /// [`Store::damaged_checkpoints`] and [`Store::checkpoint`] report it.
    pub fn checkpoints(&self) -> Result<Vec<(String, u64)>> {
        let all = checkpoint::list(&self.inner.dir)?;
        Ok(all
            .into_iter()
            .filter_map(|(name, position)| Some((name, position.ok()?)))
            .collect())
    }

    /// Every checkpoint file that cannot be read back, with what is wrong with it (usually
    /// [`Error::Corrupt`](crate::Error::Corrupt) naming the file), sorted by name.
    pub fn damaged_checkpoints(&self) -> Result<Vec<(String, crate::Error)>> {
        let all = checkpoint::list(&self.inner.dir)?;
        Ok(all
            .into_iter()
            .filter_map(|(name, position)| Some((name, position.err()?)))
            .collect())
    }

    /// Counts and memory of the store's in-memory structures.
    pub fn stats(&self) -> Stats {
        let (remembered_ids, id_window_bytes) = match &self.inner.commit {
            Some(commit) => commit.writer().id_window_usage(),
            None => (0, 0),
        };
        let index = self.inner.view.index();
        Stats {
            events: self.next_position(),
            streams: index.len(),
            index_bytes: index.heap_bytes(),
            remembered_ids,
            id_window_bytes,
        }
    }

    /// Soft-deletes `stream` (EventStoreDB's soft delete): durable when it returns; from then
    /// on [`Store::read_stream`] and [`Store::read_stream_backward`] of it yield nothing, while
    /// [`Store::stream_version`] keeps its last version, so a later append continues the
    /// versions (and is visible). It is a [`Retention::truncate_before`] past the last version,
    /// kept with the stream's other rules. `read_all` and subscriptions go on yielding the
    /// events until compaction removes them. Fails with
    /// [`Error::WrongExpectedVersion`](crate::Error::WrongExpectedVersion) if the stream's
    /// last version does not satisfy `expected` (checked with appends held back, so no append
    /// slips in between); deleting a stream without events changes nothing.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let store = Store::open(dir.path())?;
    /// store.append("order-1", ExpectedVersion::Any, [EventData::new("Placed", b"{}".to_vec())])?;
    /// store.delete_stream("order-1", ExpectedVersion::Exact(0))?;
    /// assert_eq!(store.read_stream("order-1", 0).count(), 0);
    /// assert_eq!(store.stream_version("order-1"), Some(0));
    /// let r = store.append("order-1", ExpectedVersion::Exact(0), [EventData::new("Placed", b"{}".to_vec())])?;
    /// assert_eq!(r.first_version, 1);
    /// assert_eq!(store.read_stream("order-1", 0).count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn delete_stream(&self, stream: &str, expected: ExpectedVersion) -> Result<()> {
        check_name("stream name", stream)?;
        // Holding the writer keeps appends out between the check and the change.
        let mut writer = self.commit()?.writer();
        let actual = self.try_stream_version(stream)?;
        if !expected.is_satisfied_by(actual) {
            return Err(crate::Error::WrongExpectedVersion {
                stream: stream.to_string(),
                expected,
                actual,
            });
        }
        let Some(last) = actual else {
            return Ok(());
        };
        // Under `Buffered`, the events the delete covers go to disk first: after a power loss
        // the log never ends below a delete, which would hide the appends that follow it.
        writer.sync()?;
        self.inner.retention.update(stream, |own| {
            let own = own.unwrap_or_default();
            own.truncate_before(own.truncate_before.unwrap_or(0).max(last + 1))
        })
    }

    /// Gives `stream` its own retention rules, replacing any it had: durable when it returns;
    /// stream reads hide at once what the rules hide. Limits it leaves unset come from
    /// [`Options::default_retention`]. A soft delete is never undone: the larger of the two
    /// `truncate_before` stays. `Retention::default()` removes the stream's own limits. Fails
    /// with [`Error::InvalidInput`](crate::Error::InvalidInput) for a bad stream name or a
    /// limit of zero.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Retention, Store};
    ///
    /// let store = Store::open(dir.path())?;
    /// for n in 0..5u8 {
    ///     store.append("sensor-7", ExpectedVersion::Any, [EventData::new("Read", vec![n])])?;
    /// }
    /// store.set_retention("sensor-7", Retention::default().max_count(2))?;
    /// let kept: Vec<u64> = store.read_stream("sensor-7", 0).map(|e| e.map(|e| e.version())).collect::<annals::Result<_>>()?;
    /// assert_eq!(kept, [3, 4]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_retention(&self, stream: &str, retention: Retention) -> Result<()> {
        check_name("stream name", stream)?;
        retention.validate()?;
        self.commit()?;
        self.inner.retention.update(stream, |own| {
            let deleted = own.and_then(|own| own.truncate_before);
            Retention {
                truncate_before: retention.truncate_before.max(deleted),
                ..retention
            }
        })
    }

    /// The retention rules `stream` was given ([`Store::set_retention`], or a soft delete),
    /// `None` if it has none of its own.
    pub fn retention(&self, stream: &str) -> Option<Retention> {
        self.inner.retention.own(stream)
    }

    /// Every stream with retention rules of its own (soft-deleted streams among them), with
    /// its rules, sorted by name.
    pub fn retentions(&self) -> Vec<(String, Retention)> {
        self.inner.retention.all()
    }

    /// Erases `stream` (GDPR): when it returns `Ok`, neither the stream's name nor any byte of
    /// its events (type, id, payload, metadata) remains in any file under the store
    /// directory: the segments holding them (the tail is sealed first if it holds any) and
    /// their index side files are written anew without them, and the stream's retention
    /// entry goes. Every other event keeps its position, version and bytes; the positions
    /// of the erased events become holes that [`Store::read_all`] and subscriptions skip.
    /// A later append under the same name starts a new stream at version 0.
    ///
    /// Appends and reads go on while it runs, except appends to `stream` itself, which fail
    /// with [`Error::Erasing`](crate::Error::Erasing) until it returns. A crash at any moment
    /// leaves a store that opens, holding the old or the new copy of each rewritten file,
    /// with the stream hidden from stream reads; running `erase_stream` again finishes the
    /// job. Erasing a stream that has no events only removes its retention rules. The space
    /// the old files took is freed by the file system: where the bytes must not survive on
    /// the device either, use encryption at rest or a device that honours discard.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let store = Store::open(dir.path())?;
    /// store.append("user-1234", ExpectedVersion::Any, [EventData::new("Registered", b"{\"email\":\"a@b.c\"}".to_vec())])?;
    /// store.append("order-1", ExpectedVersion::Any, [EventData::new("Placed", b"{}".to_vec())])?;
    /// let report = store.erase_stream("user-1234")?;
    /// assert_eq!(report.events_removed, 1);
    /// assert_eq!(store.stream_version("user-1234"), None);
    /// assert_eq!(store.read_all(0).count(), 1);          // order-1's event, at position 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn erase_stream(&self, stream: &str) -> Result<EraseReport> {
        check_name("stream name", stream)?;
        let m = self.maintainer()?;
        let _one_at_a_time = m.one_at_a_time.lock();
        compact::erase(m, stream)
    }

    /// Removes from the sealed segments the events that soft deletes and retention rules
    /// hide, and reclaims their space; returns what it removed. Each segment holding such
    /// events is written anew without them, online and crash-safe like
    /// [`Store::erase_stream`]; the tail is never rewritten (its events go once it is
    /// sealed). Only the oldest events of a stream are removed, never its last one, so
    /// [`Store::stream_version`] and the versions of later appends continue; what it removes
    /// becomes the stream's `truncate_before` ([`Store::retention`]), recorded before any
    /// file changes. Removed positions become holes that [`Store::read_all`] and
    /// subscriptions skip; [`Store::next_position`] is unchanged, and a checkpoint inside a
    /// hole resumes at the next event that is left.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Options, Retention, Store};
    ///
    /// let store = Store::open_with(dir.path(), Options::default().segment_size(64 << 10))?;
    /// for n in 0..2_000u32 {
    ///     store.append("sensor-7", ExpectedVersion::Any, [EventData::new("Read", n.to_le_bytes().to_vec())])?;
    /// }
    /// store.set_retention("sensor-7", Retention::default().max_count(10))?;
    /// let report = store.compact()?;
    /// assert!(report.events_removed > 0 && report.bytes_reclaimed() > 0);
    /// assert_eq!(store.read_stream("sensor-7", 0).count(), 10);
    /// assert_eq!(store.stream_version("sensor-7"), Some(1_999));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compact(&self) -> Result<CompactReport> {
        self.compact_with_progress(|_, _| {})
    }

    /// [`Store::compact`], calling `progress(done, total)` as it goes (in segments: each
    /// sealed segment is read, then rewritten if it holds events to remove, so `total` is
    /// twice their number).
    pub fn compact_with_progress(
        &self,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<CompactReport> {
        let m = self.maintainer()?;
        let _one_at_a_time = m.one_at_a_time.lock();
        let pace = Pace {
            progress: &mut progress,
            spent: &mut |_| true,
        };
        compact::compact(m, pace)
    }

    /// How the last run of background compaction ([`Options::background_compaction`])
    /// went: `None` if it is not configured or has not finished a run yet.
    pub fn last_background_compaction(&self) -> Option<Result<CompactReport>> {
        self.inner.background.as_ref().and_then(Background::last)
    }

    /// What [`Store::compact`] would remove now from the sealed segments, and the bytes of
    /// those events, counted over the streams with retention rules of their own (soft
    /// deletes among them; streams that only [`Options::default_retention`] limits are not
    /// counted). It reads those streams' events, not the whole log. Works on read-only
    /// handles too (`annals stat` shows it).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Options, Store};
    ///
    /// let store = Store::open_with(dir.path(), Options::default().segment_size(64 << 10))?;
    /// for n in 0..1_000u32 {
    ///     store.append("cart-1", ExpectedVersion::Any, [EventData::new("Added", vec![0; 100])])?;
    /// }
    /// store.delete_stream("cart-1", ExpectedVersion::Any)?;
    /// let before = store.reclaimable()?;
    /// assert!(before.events > 0 && before.bytes > before.events * 100);
    /// assert_eq!(store.compact()?.events_removed, before.events);
    /// assert_eq!(store.reclaimable()?.events, 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reclaimable(&self) -> Result<Reclaimable> {
        compact::reclaimable(&self.inner.view, &self.inner.retention)
    }

    /// What compaction and erasure work on; [`Error::ReadOnly`](crate::Error::ReadOnly) for
    /// a read-only handle.
    fn maintainer(&self) -> Result<&Maintainer> {
        self.inner
            .maintainer
            .as_ref()
            .ok_or_else(|| crate::Error::ReadOnly {
                dir: self.inner.dir.clone(),
            })
    }

    /// Copies the store to `dest` (a missing or empty directory) while appends go on: the copy
    /// opens as a store holding exactly the events below [`BackupReport::position`], the
    /// position committed when the backup started. Every frame's checksum is verified on the
    /// way (a damaged source fails with [`Error::Corrupt`](crate::Error::Corrupt) naming the
    /// file); side files, the index snapshot and consumer checkpoints come along when they
    /// check out, so the copy opens as fast as the original. Files are copied, never linked,
    /// and synced; the copy is complete when this returns (an interrupted one does not open).
    /// Works on read-only handles too.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dest = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    ///
    /// let store = Store::open(dir.path().join("live"))?;
    /// store.append("order-1", ExpectedVersion::Any, [EventData::new("Placed", b"{}".to_vec())])?;
    /// let report = store.backup(dest.path().join("copy"))?;
    /// assert_eq!(report.position, 1);
    /// let copy = Store::open(dest.path().join("copy"))?;
    /// assert_eq!(copy.stream_version("order-1"), Some(0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<BackupReport> {
        self.backup_with_progress(dest, |_, _| {})
    }

    /// [`Store::backup`], calling `progress(events copied, events to copy)` after each segment.
    pub fn backup_with_progress(
        &self,
        dest: impl AsRef<Path>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<BackupReport> {
        let hasher = self
            .inner
            .options
            .custom_stream_hasher()
            .unwrap_or(default_stream_hash);
        let log = self.inner.view.snapshot();
        let position = log.next_position;
        // A stream's last version in the copy: its newest event below the copied position,
        // whatever retention hides.
        let last_version = |stream: &str| -> Result<Option<u64>> {
            let newest_first = self.inner.view.lookup(stream, |snapshot, found| {
                ReadStreamBackward::new(snapshot, stream, None, found, &Retention::default())
            })?;
            for ev in newest_first {
                let ev = ev?;
                if ev.position() < position {
                    return Ok(Some(ev.version()));
                }
            }
            Ok(None)
        };
        let source = backup::Source {
            dir: &self.inner.dir,
            log,
            fingerprint: fingerprint(hasher),
            last_version: &last_version,
        };
        backup::backup(&source, dest.as_ref(), &mut progress)
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }
}

/// The log of the store in `dir` as a read-only opening finds it. It remembers no ids (there
/// are no appends to deduplicate), so a window of 0: none are loaded, and the index
/// snapshot is used whatever window the writer keeps.
fn recover_read_only(dir: &Path) -> Result<crate::recover::Recovered> {
    let options = Options::default();
    let hasher = options
        .custom_stream_hasher()
        .unwrap_or(default_stream_hash);
    recover(dir, options.segment_size, 0, hasher, Access::ReadOnly)
}

/// Counts and memory of a store's in-memory structures: see [`Store::stats`]. Byte counts
/// are what the structures hold on the heap, without the allocator's own overhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events in the store.
    pub events: u64,
    /// Streams in the store.
    pub streams: usize,
    /// Bytes of the per-stream sparse index.
    pub index_bytes: usize,
    /// Event ids remembered for idempotent appends.
    pub remembered_ids: usize,
    /// Bytes of the remembered ids.
    pub id_window_bytes: usize,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .field("next_position", &self.next_position())
            .finish_non_exhaustive()
    }
}
