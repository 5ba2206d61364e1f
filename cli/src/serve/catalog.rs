//! What the pages show about the whole store, kept up to date incrementally: one zero-copy
//! pass over the log when the server starts, then only the events appended since the last
//! request. No request scans the whole log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

use annals::Store;

/// One stream: its events and last version.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamInfo {
    pub events: u64,
    pub last_version: u64,
}

/// The store as the pages see it.
#[derive(Debug, Default)]
pub struct Catalog {
    /// Every event before it is counted.
    pub scanned_to: u64,
    /// Counted by name (a hash lookup per event), and the names in order for the list.
    pub streams: HashMap<String, StreamInfo>,
    pub names: BTreeSet<String>,
    pub types: BTreeMap<String, u64>,
    /// Events appended per minute (by their timestamps), keyed by minutes since the epoch.
    pub per_minute: BTreeMap<u64, u64>,
}

impl Catalog {
    /// Brings the catalog up to date with `store` (refreshed first: it is read-only). What
    /// was counted before an error stays counted once.
    pub fn update(&mut self, store: &Store) -> Result<(), String> {
        store.refresh().map_err(|e| e.to_string())?;
        let mut next = self.scanned_to;
        let scanned = store.scan_all(self.scanned_to, |ev| {
            match self.streams.get_mut(ev.stream()) {
                Some(entry) => {
                    entry.events += 1;
                    entry.last_version = ev.version();
                }
                None => {
                    let info = StreamInfo {
                        events: 1,
                        last_version: ev.version(),
                    };
                    self.streams.insert(ev.stream().to_string(), info);
                    self.names.insert(ev.stream().to_string());
                }
            }
            match self.types.get_mut(ev.event_type()) {
                Some(n) => *n += 1,
                None => {
                    self.types.insert(ev.event_type().to_string(), 1);
                }
            }
            *self
                .per_minute
                .entry(ev.timestamp() / 60_000_000)
                .or_default() += 1;
            next = ev.position() + 1;
            ControlFlow::Continue(())
        });
        self.scanned_to = next.max(self.scanned_to);
        scanned.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Streams whose names start with `prefix`, from the first after `after`, at most `limit`.
    pub fn streams_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Vec<(&String, &StreamInfo)> {
        use std::ops::Bound;
        let start = if after > prefix {
            Bound::Excluded(after)
        } else {
            Bound::Included(prefix)
        };
        self.names
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|name| name.starts_with(prefix))
            .filter_map(|name| Some((name, self.streams.get(name)?)))
            .take(limit)
            .collect()
    }
}
