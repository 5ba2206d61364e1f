//! [`Store::copy_to`]: a passive migration. Every event of this store, in position order,
//! goes through a transform into the store at a destination, each stream's output in source
//! order with dense versions. The destination records how far the copy got (`COPY-PROGRESS`,
//! layout in [`crate::format::copy_progress`]), so running the copy again copies only what is
//! new: a live store moves with a short final pause.
//!
//! Progress is recorded every 64 batches of 1,000 appends (and at the end), once they are
//! durable in the destination: the source position reached, and the destination's next
//! position then. A crash between the two leaves a
//! prefix of the batch's output in the destination (recovery keeps a prefix of frames); the
//! next run transforms again from the recorded source position and skips as many outputs as
//! the destination holds past its recorded position, checking that each one matches (so the
//! transform must give the same output for the same event).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::event::{EventData, ExpectedVersion, RecordedEvent};
use crate::format::{decode_copy_progress, encode_copy_progress, CopyProgress};
use crate::fs::dir::{COPY_PROGRESS_FILE, COPY_PROGRESS_TMP};
use crate::fs::install;
use crate::options::{Durability, Options};
use crate::store::Store;

/// Appends written to the destination per batch (one group commit).
const BATCH: usize = 1_000;
/// Batches between two records of progress (each costs a sync and a file replaced).
const BATCHES_PER_PROGRESS: u32 = 64;

/// What one run of [`Store::copy_to`] copied: check it before switching over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyReport {
    /// The source positions this run covered: `from..to`.
    pub from: u64,
    /// See `from`.
    pub to: u64,
    /// Events read from the source.
    pub events_in: u64,
    /// Events appended to the destination.
    pub events_out: u64,
    /// Per event type of the source: events in, and events out of them.
    pub by_type: BTreeMap<String, (u64, u64)>,
    /// Per stream: events in, and events out.
    pub by_stream: BTreeMap<String, (u64, u64)>,
    /// How long it took.
    pub duration: Duration,
}

/// The copy's state between batches.
struct Copy {
    dst: Store,
    dir: std::path::PathBuf,
    batch: Vec<(String, ExpectedVersion, [EventData; 1])>,
    /// Outputs already in the destination from an interrupted batch: skipped, checked.
    skip: u64,
    /// Batches appended since progress was last recorded.
    unrecorded: u32,
    report: CopyReport,
}

impl Copy {
    /// Appends the batch, and every [`BATCHES_PER_PROGRESS`] batches (or when `record`)
    /// makes what was appended durable and records that the source is copied below
    /// `source`.
    fn flush(&mut self, source: u64, record: bool) -> Result<()> {
        for r in self.dst.append_many(self.batch.drain(..))? {
            r?;
        }
        self.unrecorded += 1;
        if !record && self.unrecorded < BATCHES_PER_PROGRESS {
            return Ok(());
        }
        self.unrecorded = 0;
        self.dst.sync()?;
        let progress = CopyProgress {
            source,
            dest: self.dst.next_position(),
        };
        let bytes = encode_copy_progress(&progress);
        install(
            &self.dir,
            COPY_PROGRESS_FILE,
            COPY_PROGRESS_TMP,
            &bytes,
            0,
            "write copy progress",
        )
        .map(drop)
    }

    /// Queues `out`, one output of `ev`, unless the destination holds it already.
    fn push(&mut self, ev: &RecordedEvent, out: EventData, first: bool) -> Result<()> {
        let out = carried_over(ev, out, first);
        if self.skip > 0 {
            self.skip -= 1;
            return self.check_copied(ev, &out);
        }
        self.batch
            .push((ev.stream().to_string(), ExpectedVersion::Any, [out]));
        Ok(())
    }

    /// Checks that the destination's event at the next skipped position is `out`.
    fn check_copied(&self, ev: &RecordedEvent, out: &EventData) -> Result<()> {
        let at = self.dst.next_position() - self.skip - 1;
        let found = self.dst.read_all(at).next().transpose()?;
        let same = found.as_ref().is_some_and(|f| {
            f.stream() == ev.stream()
                && f.event_type() == out.event_type()
                && f.payload() == out.payload()
                && f.metadata() == out.metadata.as_slice()
        });
        match same {
            true => Ok(()),
            false => Err(Error::CopyStopped {
                position: ev.position(),
                reason: format!(
                    "the destination holds, at position {at}, an event this transform does not \
                     give again: an interrupted copy can only resume with the same transform"
                ),
            }),
        }
    }
}

impl Store {
    /// Copies every event of this store, in position order, through `transform` into the
    /// store at `dst` (created if missing): zero, one or several events out per event in,
    /// appended to the same stream in source order, so each stream's output has dense
    /// versions. The ids and timestamps of the events in stay unless the transform sets them
    /// (the id goes to the first event out of each). Upcasters of this store apply first.
    ///
    /// `dst` records how far the copy got: running it again (this store taking appends
    /// meanwhile) copies only what is new, so a live store moves with a short final pause:
    /// copy, copy again, stop the writers, copy a last time, switch. A crash at any moment
    /// loses and repeats nothing: the next run finishes the job (the transform must give the
    /// same output for the same event). The report counts what this run copied, by type and
    /// by stream, for a check before switching ([`Store::verify_copy`] compares the copy
    /// with the source through the transform). Fails with
    /// [`Error::Locked`](crate::Error::Locked) if `dst` is open elsewhere.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let dst = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, RecordedEvent, Store};
    ///
    /// let store = Store::open(dir.path())?;
    /// store.append("user-1", ExpectedVersion::Any, [EventData::new("AgreementAccepted", b"{}".to_vec())])?;
    /// let add_revision = |ev: &RecordedEvent| -> Vec<EventData> {
    ///     vec![EventData::new(ev.event_type(), br#"{"revision":1}"#.to_vec())]
    /// };
    /// let report = store.copy_to(dst.path().join("v2"), add_revision)?;
    /// assert_eq!((report.events_in, report.events_out), (1, 1));
    /// store.append("user-1", ExpectedVersion::Any, [EventData::new("AgreementAccepted", b"{}".to_vec())])?;
    /// let again = store.copy_to(dst.path().join("v2"), add_revision)?;
    /// assert_eq!((again.from, again.to, again.events_out), (1, 2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copy_to(
        &self,
        dst: impl AsRef<Path>,
        mut transform: impl FnMut(&RecordedEvent) -> Vec<EventData>,
    ) -> Result<CopyReport> {
        self.try_copy_to(dst, |ev| Ok(transform(ev)))
    }

    /// [`Store::copy_to`] with a transform that may fail: the copy then stops with
    /// [`Error::CopyStopped`](crate::Error::CopyStopped) naming the source position, after
    /// recording everything before it, so running it again (with the transform mended)
    /// starts there.
    pub fn try_copy_to(
        &self,
        dst: impl AsRef<Path>,
        mut transform: impl FnMut(&RecordedEvent) -> std::result::Result<Vec<EventData>, String>,
    ) -> Result<CopyReport> {
        let started = Instant::now();
        let dir = dst.as_ref().to_path_buf();
        let dst = Store::open_with(&dir, Options::default().durability(Durability::Buffered))?;
        let progress = read_progress(&dir)?;
        let to = self.next_position();
        let mut copy = Copy {
            skip: dst.next_position().saturating_sub(progress.dest),
            unrecorded: 0,
            dst,
            dir,
            batch: Vec::with_capacity(BATCH),
            report: CopyReport {
                from: progress.source,
                to,
                ..CopyReport::default()
            },
        };
        let mut source = progress.source;
        for ev in self.read_all(progress.source) {
            let ev = ev?;
            if ev.position() >= to {
                break;
            }
            let outs = match transform(&ev) {
                Ok(outs) => outs,
                Err(reason) => {
                    copy.flush(source, true)?;
                    let position = ev.position();
                    return Err(Error::CopyStopped { position, reason });
                }
            };
            let n = outs.len() as u64;
            for (i, out) in outs.into_iter().enumerate() {
                copy.push(&ev, out, i == 0)?;
            }
            let r = &mut copy.report;
            r.events_in += 1;
            r.events_out += n;
            count(&mut r.by_type, ev.event_type(), n);
            count(&mut r.by_stream, ev.stream(), n);
            source = ev.position() + 1;
            if copy.batch.len() >= BATCH {
                copy.flush(source, false)?;
            }
        }
        copy.flush(to.max(source), true)?;
        copy.report.duration = started.elapsed();
        Ok(copy.report)
    }
}

/// `out`, an output of `ev`, with what a copy keeps of `ev`: its timestamp and id, unless
/// the transform set them (the id only on the `first` output of an event: a stream holds an
/// id once).
fn carried_over(ev: &RecordedEvent, mut out: EventData, first: bool) -> EventData {
    out.timestamp.get_or_insert(ev.timestamp());
    if out.id.is_none() && first {
        out.id = ev.id();
    }
    out
}

/// Counts one event in and `out` events out under `key` (allocating the key once).
fn count(map: &mut BTreeMap<String, (u64, u64)>, key: &str, out: u64) {
    match map.get_mut(key) {
        Some(c) => *c = (c.0 + 1, c.1 + out),
        None => {
            map.insert(key.to_string(), (1, out));
        }
    }
}

/// How far the copy into `dir` got (nothing yet without the file).
fn read_progress(dir: &Path) -> Result<CopyProgress> {
    let path = dir.join(COPY_PROGRESS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode_copy_progress(&bytes).map_err(|d| Error::corrupt(&path, 0, d)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CopyProgress::default()),
        Err(e) => Err(Error::io("read copy progress", &path, e)),
    }
}

/// What [`Store::verify_copy`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CopyCheck {
    /// Source events checked (all below the position recorded in the destination).
    pub events_in: u64,
    /// Destination events they were compared with.
    pub events_out: u64,
    /// The first differences found (at most 100): stream, version in the destination, and
    /// what differs.
    pub differences: Vec<(String, u64, String)>,
}

impl CopyCheck {
    /// Whether the destination holds exactly the transform of the source.
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

impl Store {
    /// Checks a copy made by [`Store::copy_to`] before switching to it: every source event
    /// the destination records as copied goes through `transform` again, and each event out
    /// must be the destination's next event of the same stream (type, payload, metadata, and
    /// the id and timestamp `copy_to` gives it); then no stream of the destination may hold
    /// more. Reads every copied event of both stores once.
    pub fn verify_copy(
        &self,
        dst: impl AsRef<Path>,
        mut transform: impl FnMut(&RecordedEvent) -> Vec<EventData>,
    ) -> Result<CopyCheck> {
        let dir = dst.as_ref();
        let progress = read_progress(dir)?;
        let dst = Store::open_read_only(dir)?;
        let mut check = CopyCheck::default();
        let mut next_version: std::collections::HashMap<String, u64> = Default::default();
        let differ = |check: &mut CopyCheck, stream: &str, version: u64, what: String| {
            if check.differences.len() < 100 {
                check.differences.push((stream.to_string(), version, what));
            }
        };
        for ev in self.read_all(0) {
            let ev = ev?;
            if ev.position() >= progress.source {
                break;
            }
            check.events_in += 1;
            for (i, out) in transform(&ev).into_iter().enumerate() {
                let out = carried_over(&ev, out, i == 0);
                let version = next_version.entry(ev.stream().to_string()).or_insert(0);
                let found = dst.read_stream(ev.stream(), *version).next().transpose()?;
                let problem = match found {
                    None => Some("missing".to_string()),
                    Some(f) if f.version() != *version => Some("missing".to_string()),
                    Some(f) => (f.event_type() != out.event_type()
                        || f.payload() != out.payload()
                        || f.metadata() != out.metadata.as_slice()
                        || Some(f.timestamp()) != out.timestamp
                        || f.id() != out.id)
                        .then(|| {
                            format!(
                                "differs from the transform of source position {}",
                                ev.position()
                            )
                        }),
                };
                if let Some(what) = problem {
                    differ(&mut check, ev.stream(), *version, what);
                }
                *version += 1;
                check.events_out += 1;
            }
        }
        for (stream, expected) in &next_version {
            if let Some(last) = dst.stream_version(stream) {
                if last + 1 > *expected {
                    differ(
                        &mut check,
                        stream,
                        *expected,
                        "more events than the transform gives".into(),
                    );
                }
            }
        }
        Ok(check)
    }
}
