//! Subscriptions: catch up from the log, then follow live commits in position order, with no
//! gap and no duplicate.
//!
//! A subscription is a read cursor plus a snapshot of the committed log; when it reaches the
//! snapshot's end it takes a newer one, and when there is none it waits on the writer's
//! [`CommitSignal`] (no polling). It never buffers events, so a slow or stalled subscriber
//! holds a constant amount of memory (a snapshot keeps the segment maps alive, nothing more)
//! and never slows appends: the writer only bumps a counter and wakes waiting threads (tasks
//! are woken by the appender that led the batch, after the writer is released). Under
//! [`Durability::Fsync`](crate::Durability::Fsync) only durable events are delivered, since
//! the writer publishes a batch only after its `fdatasync`.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::RecordedEvent;
use crate::format::RecordView;
use crate::index::postings::{category, Key};
use crate::lifecycle::Retention;
use crate::read::{LogView, ReadAll, ReadIndexed, ReadStream};

/// Which events a subscription delivers. Checked on the event as it lies in the log, before
/// anything is copied.
#[derive(Debug, Clone, Default)]
struct Filter {
    event_types: Option<HashSet<String>>,
    stream_prefix: Option<String>,
    category: Option<String>,
    /// Exactly this stream, from this version on.
    stream: Option<(String, u64)>,
}

impl Filter {
    fn accepts(&self, stream: &str, event_type: &str, version: u64) -> bool {
        if let Some((only, from_version)) = &self.stream {
            if stream != only || version < *from_version {
                return false;
            }
        }
        if let Some(prefix) = &self.stream_prefix {
            if !stream.starts_with(prefix.as_str()) {
                return false;
            }
        }
        if let Some(c) = &self.category {
            if category(stream) != Some(c.as_str()) {
                return false;
            }
        }
        match &self.event_types {
            Some(types) => types.contains(event_type),
            None => true,
        }
    }

    fn accepts_view(&self, ev: &RecordView<'_>) -> bool {
        self.accepts(ev.stream, ev.event_type, ev.version)
    }
}

/// A live subscription: see [`Store::subscribe_all`](crate::Store::subscribe_all) and
/// [`Store::subscribe_stream`](crate::Store::subscribe_stream).
///
/// Delivers every committed event from its start, in position order, with no gap and no
/// duplicate, then waits for new ones. It keeps its store open while it lives.
///
/// ```
/// use std::time::Duration;
/// # use annals::{EventData, ExpectedVersion, Store};
/// # let dir = tempfile::tempdir()?;
/// # let store = Store::open(dir.path())?;
/// store.append("student-1", ExpectedVersion::Any, [EventData::new("Enrolled", b"{}".to_vec())])?;
/// let mut sub = store.subscribe_all(0).event_types(["Enrolled"]);
/// let ev = sub.next_timeout(Duration::from_secs(1))?.expect("one event");
/// assert_eq!(ev.stream(), "student-1");
/// assert!(sub.try_next()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Subscription {
    view: LogView,
    /// The store's engine, kept open while the subscription lives.
    _store: Arc<dyn Send + Sync>,
    /// Catch-up of a stream subscription through the stream index, before following the log
    /// from the position its snapshot ended at.
    catch_up: Option<ReadStream>,
    /// Catch-up through the type or category index, once a filter asks for one.
    indexed: Option<IndexedCatchUp>,
    log: ReadAll,
    filter: Filter,
    /// The error following the log met, returned by every later call.
    failure: Option<Error>,
    /// Its number for the commit signal's wakers (async waits).
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.view.signal().forget(self.id);
    }
}

impl Subscription {
    pub(crate) fn all(view: LogView, store: Arc<dyn Send + Sync>, from_position: u64) -> Self {
        let log = view.read_all(from_position);
        Subscription {
            id: view.signal().subscription_id(),
            view,
            _store: store,
            catch_up: None,
            indexed: None,
            log,
            filter: Filter::default(),
            failure: None,
        }
    }

    pub(crate) fn stream(
        view: LogView,
        store: Arc<dyn Send + Sync>,
        stream: &str,
        from_version: u64,
    ) -> Self {
        // Subscriptions deliver every committed event: retention hides events from stream
        // reads only.
        let (catch_up, end) = view.read_stream_until(stream, from_version, &Retention::default());
        let log = view.read_all(end);
        Subscription {
            id: view.signal().subscription_id(),
            view,
            _store: store,
            catch_up: Some(catch_up),
            indexed: None,
            log,
            filter: Filter {
                stream: Some((stream.to_string(), from_version)),
                ..Filter::default()
            },
            failure: None,
        }
    }

    /// Delivers only events of these types. Catching up reads them through the type index
    /// (only those events are read); following goes on from the end of the log.
    #[must_use]
    pub fn event_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        let types: HashSet<String> = types.into_iter().map(Into::into).collect();
        let keys = types.iter().map(|t| Key::event_type(t)).collect();
        self.filter.event_types = Some(types);
        self.catch_up_through(keys)
    }

    /// Delivers only events of streams in `category` (streams named `{category}-…`, see
    /// [`Store::read_category`](crate::Store::read_category)). Catching up reads them
    /// through the category index.
    #[must_use]
    pub fn category(mut self, category: impl Into<String>) -> Self {
        let category = category.into();
        let keys = vec![Key::category(&category)];
        self.filter.category = Some(category);
        match self.filter.event_types.is_some() {
            // The type index already narrows the catch-up.
            true => self,
            false => self.catch_up_through(keys),
        }
    }

    /// Catches up through the indexes of `keys` (merged in position order), from where the
    /// subscription is, to the end of the log now; a stream subscription catches up through
    /// its own index instead.
    fn catch_up_through(mut self, keys: Vec<Key>) -> Self {
        if self.catch_up.is_none() {
            let snapshot = self.view.snapshot();
            let from = self.position();
            // A start past the log's end (a checkpoint saved beside a newer writer) stays.
            let end = snapshot.next_position.max(from);
            let reads = keys
                .into_iter()
                .map(|k| {
                    self.view
                        .read_indexed_in(snapshot.clone(), k, from)
                        .peekable()
                })
                .collect();
            self.indexed = Some(IndexedCatchUp {
                reads,
                next: from,
                end,
                failure: None,
            });
        }
        self
    }

    /// Delivers only events of streams whose name starts with `prefix`.
    #[must_use]
    pub fn stream_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.filter.stream_prefix = Some(prefix.into());
        self
    }

    /// Position of the next event the subscription will look at: everything before it has
    /// been delivered or filtered out. Save it (`Store::save_checkpoint`) to resume later
    /// with [`Store::subscribe_all`](crate::Store::subscribe_all). (A stream subscription
    /// resumes by version instead: save `event.version() + 1` and pass it to
    /// [`Store::subscribe_stream`](crate::Store::subscribe_stream).)
    pub fn position(&self) -> u64 {
        match &self.indexed {
            Some(indexed) => indexed.next,
            None => self.log.next_position(),
        }
    }

    /// After [`Subscription::try_next`] found nothing: has `waker` woken by the next commit,
    /// or returns `true` (registering nothing) if one came meanwhile.
    #[cfg(feature = "async")]
    pub(crate) fn wake_on_commit(&self, waker: &std::task::Waker) -> bool {
        self.view
            .signal()
            .wake_beyond(self.id, self.log.next_position(), waker)
    }

    /// The next event, without waiting: `None` if there is none yet.
    pub fn try_next(&mut self) -> Result<Option<RecordedEvent>> {
        self.next_until(Some(Instant::now()))
    }

    /// The next event, waiting at most `timeout` for one: `None` if none came.
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<RecordedEvent>> {
        self.next_until(Instant::now().checked_add(timeout))
    }

    /// The next event, waiting until `deadline` (forever for `None`).
    fn next_until(&mut self, deadline: Option<Instant>) -> Result<Option<RecordedEvent>> {
        if let Some(catch_up) = &mut self.catch_up {
            for ev in catch_up.by_ref() {
                let ev = ev?;
                if self
                    .filter
                    .accepts(ev.stream(), ev.event_type(), ev.version())
                {
                    return Ok(Some(ev));
                }
            }
            self.catch_up = None;
        }
        if let Some(indexed) = &mut self.indexed {
            while let Some(ev) = indexed.next_event()? {
                if self
                    .filter
                    .accepts(ev.stream(), ev.event_type(), ev.version())
                {
                    return Ok(Some(ev));
                }
            }
            // Caught up to the end of the log as it was: follow it from there.
            self.log = self.view.read_all(indexed.end);
            self.indexed = None;
        }
        loop {
            if let Some(e) = &self.failure {
                return Err(e.duplicate());
            }
            while let Some(view) = self.log.next_view() {
                let view = match view {
                    Ok(view) => view,
                    Err(e) => {
                        // Nothing after damage is delivered: the error comes again.
                        self.failure = Some(e.duplicate());
                        return Err(e);
                    }
                };
                if self.filter.accepts_view(&view) {
                    return self.view.upcasters().record(&view).map(Some);
                }
            }
            let position = self.log.next_position();
            let newer = self.view.snapshot();
            if newer.next_position > position {
                self.log.extend(newer);
                continue;
            }
            if deadline.is_some_and(|d| d <= Instant::now())
                || !self.view.signal().wait_beyond(position, deadline)
            {
                return Ok(None);
            }
        }
    }
}

/// A catch-up through type or category indexes: one read per key, merged in position order.
struct IndexedCatchUp {
    reads: Vec<std::iter::Peekable<ReadIndexed>>,
    /// Position after the last event delivered (everything before it was looked at).
    next: u64,
    /// Where the snapshot the reads read ends.
    end: u64,
    /// The error a read met: returned again by every later call, so that nothing after it
    /// is skipped.
    failure: Option<Error>,
}

impl IndexedCatchUp {
    /// The next event of any of the reads, the lowest position first.
    fn next_event(&mut self) -> Result<Option<RecordedEvent>> {
        if let Some(e) = &self.failure {
            return Err(e.duplicate());
        }
        let mut best: Option<(usize, u64)> = None;
        for (i, read) in self.reads.iter_mut().enumerate() {
            match read.peek() {
                Some(Err(_)) => {
                    let e = match read.next() {
                        Some(Err(e)) => e,
                        _ => Error::InvalidInput("an indexed read failed".into()),
                    };
                    self.failure = Some(e.duplicate());
                    return Err(e);
                }
                Some(Ok(ev)) if best.is_none_or(|(_, p)| ev.position() < p) => {
                    best = Some((i, ev.position()));
                }
                _ => {}
            }
        }
        let Some((i, _)) = best else {
            self.next = self.end;
            return Ok(None);
        };
        let ev = self.reads[i].next().transpose()?;
        if let Some(ev) = &ev {
            self.next = ev.position() + 1;
        }
        Ok(ev)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("position", &self.position())
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl Iterator for Subscription {
    type Item = Result<RecordedEvent>;

    /// Blocks until the next event (a live subscription never ends).
    fn next(&mut self) -> Option<Self::Item> {
        self.next_until(None).transpose()
    }
}
