//! [`Store`]: the handle applications hold. Opening, appending, reading, syncing, closing.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::dir::DirLock;
use crate::error::Result;
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::options::Options;
use crate::read::{ReadAll, Snapshot};
use crate::recovery::{recover, OpenReport};
use crate::writer::{validate, Writer};

/// An open event store: a cheap handle; clones share one engine. All methods take `&self`.
///
/// The directory stays locked until the last handle is closed or dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    options: Options,
    report: OpenReport,
    writer: Mutex<Writer>,
    /// What readers see; replaced by the writer after each append.
    committed: RwLock<Snapshot>,
    // Declared last so it is released last, after the writer has synced and stopped.
    _lock: DirLock,
}

impl Store {
    /// Opens the store in `dir` with default [`Options`], creating the directory if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(dir, Options::default())
    }

    /// Opens the store in `dir`, creating the directory if missing.
    ///
    /// Fails with [`Error::Locked`](crate::Error::Locked) if the store is open already (in this
    /// process or another), with [`Error::Corrupt`](crate::Error::Corrupt) if a sealed segment
    /// is damaged. A torn tail left by a crash is cut and described in [`Store::open_report`].
    pub fn open_with(dir: impl AsRef<Path>, options: Options) -> Result<Store> {
        options.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let lock = DirLock::acquire(&dir)?;
        let recovered = recover(&dir, options.get_segment_size())?;
        let report = recovered.report.clone();
        let writer = Writer::new(dir.clone(), options.clone(), recovered)?;
        let committed = RwLock::new(writer.snapshot());
        Ok(Store {
            inner: Arc::new(Inner {
                dir,
                options,
                report,
                writer: Mutex::new(writer),
                committed,
                _lock: lock,
            }),
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
        let events: Vec<EventData> = events.into_iter().collect();
        let frame_len = validate(stream, &events, self.inner.options.get_max_event_size())?;
        let mut writer = self.inner.writer.lock();
        let result = writer.append(stream, expected, &events, frame_len)?;
        *self.inner.committed.write() = writer.snapshot();
        Ok(result)
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
        ReadAll::new(self.inner.committed.read().clone(), from)
    }

    /// The last version of `stream`, `None` if it has no events.
    pub fn stream_version(&self, stream: &str) -> Option<u64> {
        self.inner.writer.lock().stream_version(stream)
    }

    /// The position the next event will get: every position below it is committed.
    pub fn next_position(&self) -> u64 {
        self.inner.committed.read().next_position
    }

    /// Puts every append that has returned on stable storage (a no-op in effect under
    /// [`Durability::Fsync`](crate::Durability::Fsync)).
    pub fn sync(&self) -> Result<()> {
        self.inner.writer.lock().sync()
    }

    /// Syncs and gives up this handle. The directory is released when the last handle is gone.
    pub fn close(self) -> Result<()> {
        self.sync()
    }

    /// What opening the store found: segments, events, and any torn tail that was cut.
    pub fn open_report(&self) -> &OpenReport {
        &self.inner.report
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

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .field("next_position", &self.next_position())
            .finish_non_exhaustive()
    }
}
