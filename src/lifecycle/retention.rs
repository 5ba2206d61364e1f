//! [`Retention`] rules and the table of every stream's ([`Retentions`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::format::{decode_retention, encode_retention, RetentionEntry, NO_LIMIT};
use crate::fs::dir::{RETENTION_FILE, RETENTION_TMP};
use crate::fs::install;

/// Which events of a stream reads show: at most the newest `max_count`, none older than
/// `max_age`, none below version `truncate_before`. Set per stream with
/// [`Store::set_retention`](crate::Store::set_retention) or for every stream without its own
/// with [`Options::default_retention`](crate::Options::default_retention); a soft delete
/// ([`Store::delete_stream`](crate::Store::delete_stream)) is a `truncate_before` past the
/// stream's last version. Hidden events stay in the log (and in `read_all` and
/// subscriptions) until compaction removes them.
///
/// ```
/// use std::time::Duration;
/// use annals::Retention;
///
/// let r = Retention::default().max_count(1_000).max_age(Duration::from_secs(86_400));
/// assert_eq!(r.max_count, Some(1_000));
/// assert_eq!(r.truncate_before, None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// Keep at most this many of the newest events (at least 1).
    pub max_count: Option<u64>,
    /// Hide events whose timestamp is older than this (at least a microsecond).
    pub max_age: Option<Duration>,
    /// Hide versions below this one.
    pub truncate_before: Option<u64>,
}

impl Retention {
    /// Keeps at most the newest `count` events.
    #[must_use]
    pub fn max_count(mut self, count: u64) -> Self {
        self.max_count = Some(count);
        self
    }

    /// Hides events older than `age`.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// Hides versions below `version`.
    #[must_use]
    pub fn truncate_before(mut self, version: u64) -> Self {
        self.truncate_before = Some(version);
        self
    }

    /// [`Error::InvalidInput`] for a limit of zero.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_count == Some(0) {
            return Err(Error::InvalidInput(
                "retention max_count must be at least 1".into(),
            ));
        }
        if self.max_age.is_some_and(|a| a.as_micros() == 0) {
            return Err(Error::InvalidInput(
                "retention max_age must be at least a microsecond".into(),
            ));
        }
        Ok(())
    }

    /// The first version stream reads show of a stream whose last version is `last` (before
    /// `max_age`, which depends on the clock, hides more).
    ///
    /// ```
    /// let r = annals::Retention::default().max_count(10).truncate_before(5);
    /// assert_eq!(r.first_visible(99), 90);
    /// assert_eq!(r.first_visible(8), 5);
    /// ```
    pub fn first_visible(&self, last: u64) -> u64 {
        let by_count = self
            .max_count
            .map_or(0, |n| last.saturating_add(1).saturating_sub(n));
        by_count.max(self.truncate_before.unwrap_or(0))
    }

    /// Events stamped before this (microseconds since the Unix epoch) are hidden now.
    pub(crate) fn min_timestamp(&self) -> u64 {
        let Some(age) = self.max_age else { return 0 };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        now.saturating_sub(u64::try_from(age.as_micros()).unwrap_or(u64::MAX))
    }

    fn to_entry(self, stream: &str) -> RetentionEntry {
        let age = self.max_age.map_or(NO_LIMIT, |a| {
            u64::try_from(a.as_micros()).unwrap_or(NO_LIMIT - 1)
        });
        (
            stream.to_string(),
            self.truncate_before.unwrap_or(0),
            self.max_count.unwrap_or(NO_LIMIT),
            age,
        )
    }

    fn from_entry(&(_, truncate, count, age): &RetentionEntry) -> Self {
        Retention {
            max_count: (count != NO_LIMIT).then_some(count),
            max_age: (age != NO_LIMIT).then(|| Duration::from_micros(age)),
            truncate_before: (truncate != 0).then_some(truncate),
        }
    }
}

/// Every stream's own retention, as the `RETENTION` file holds it, and the default for the
/// others.
#[derive(Debug)]
pub(crate) struct Retentions {
    dir: PathBuf,
    default: Retention,
    /// What reads consult; replaced after the file is written.
    streams: RwLock<HashMap<String, Retention>>,
    /// Changes go one at a time (the file is rewritten whole); reads do not wait for them.
    changing: Mutex<()>,
}

impl Retentions {
    /// The table of the store in `dir` (empty without a file); [`Error::Corrupt`] naming the
    /// file if it is damaged.
    pub fn load(dir: &Path, default: Retention) -> Result<Self> {
        Ok(Retentions {
            dir: dir.to_path_buf(),
            default,
            streams: RwLock::new(read_table(dir)?),
            changing: Mutex::new(()),
        })
    }

    /// Reads the file again (for a read-only handle, whose writer may have changed it).
    pub fn reload(&self) -> Result<()> {
        let fresh = read_table(&self.dir)?;
        *self.streams.write() = fresh;
        Ok(())
    }

    /// The rules that apply to `stream`: the limits it has of its own, the default's for
    /// the others.
    pub fn get(&self, stream: &str) -> Retention {
        let Some(own) = self.own(stream) else {
            return self.default;
        };
        Retention {
            max_count: own.max_count.or(self.default.max_count),
            max_age: own.max_age.or(self.default.max_age),
            truncate_before: own.truncate_before.max(self.default.truncate_before),
        }
    }

    /// Every stream with rules of its own, sorted by name.
    pub fn all(&self) -> Vec<(String, Retention)> {
        let mut all: Vec<_> = self
            .streams
            .read()
            .iter()
            .map(|(name, r)| (name.clone(), *r))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The rules `stream` was given, if any.
    pub fn own(&self, stream: &str) -> Option<Retention> {
        self.streams.read().get(stream).copied()
    }

    /// Gives `stream` the rules `f` makes of its own (none: `None`), durably: the file is
    /// written first, then reads see the change. Rules without any limit remove the entry.
    pub fn update(
        &self,
        stream: &str,
        f: impl FnOnce(Option<Retention>) -> Retention,
    ) -> Result<()> {
        self.change(|table| {
            let new = f(table.get(stream).copied());
            set(table, stream, new);
        })
    }

    /// Raises the `truncate_before` of each stream named to the version beside it (never
    /// lowers one), in one durable change: compaction records what it removes this way.
    pub fn raise_truncations(&self, cuts: &[(String, u64)]) -> Result<()> {
        if cuts.is_empty() {
            return Ok(());
        }
        self.change(|table| {
            for (stream, cut) in cuts {
                let own = table.get(stream.as_str()).copied().unwrap_or_default();
                let raised = own.truncate_before.unwrap_or(0).max(*cut);
                set(table, stream, own.truncate_before(raised));
            }
        })
    }

    /// Forgets `stream`'s rules, durably (an erased stream leaves no trace).
    pub fn remove(&self, stream: &str) -> Result<()> {
        self.change(|table| {
            table.remove(stream);
        })
    }

    /// Applies `f` to a copy of the table, writes the file, then lets reads see the change.
    fn change(&self, f: impl FnOnce(&mut HashMap<String, Retention>)) -> Result<()> {
        let _one_at_a_time = self.changing.lock();
        let mut next = self.streams.read().clone();
        f(&mut next);
        let mut entries: Vec<RetentionEntry> =
            next.iter().map(|(name, r)| r.to_entry(name)).collect();
        entries.sort();
        install(
            &self.dir,
            RETENTION_FILE,
            RETENTION_TMP,
            &encode_retention(&entries),
            0,
            "write retention file",
        )?;
        *self.streams.write() = next;
        Ok(())
    }
}

/// Gives `stream` the rules `new` in `table`; rules without any limit remove the entry.
fn set(table: &mut HashMap<String, Retention>, stream: &str, mut new: Retention) {
    if new.truncate_before == Some(0) {
        new.truncate_before = None;
    }
    if new == Retention::default() {
        table.remove(stream);
    } else {
        table.insert(stream.to_string(), new);
    }
}

/// The table the `RETENTION` file of `dir` holds (empty without one).
fn read_table(dir: &Path) -> Result<HashMap<String, Retention>> {
    Ok(read_retention_file(dir)?
        .unwrap_or_default()
        .iter()
        .map(|e| (e.0.clone(), Retention::from_entry(e)))
        .collect())
}

/// The entries and bytes of the `RETENTION` file of `dir`, `None` without one;
/// [`Error::Corrupt`] naming it if it is damaged.
pub(crate) fn read_retention_file(dir: &Path) -> Result<Option<Vec<RetentionEntry>>> {
    let path = dir.join(RETENTION_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode_retention(&bytes)
            .map(Some)
            .map_err(|(offset, reason)| Error::corrupt(&path, offset, reason)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read retention file", &path, e)),
    }
}
