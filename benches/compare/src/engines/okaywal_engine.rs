//! okaywal: one log entry per append, `commit()` (durable); no index, so no stream reads
//! (BENCHMARKS.md runs it on W1–W4 only). Checkpointing is pushed out of reach so that every
//! entry stays in the log for the replay.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use okaywal::{Configuration, Entry, EntryId, LogManager, SegmentReader, WriteAheadLog};

use crate::engine::{encode, err, Engine, Ev, Expected, Peer, Res};

pub const PEER: Peer = Peer {
    name: "okaywal",
    settings: "okaywal 0.3, one entry per append (events as chunks), EntryWriter::commit() \
               (fsync before it returns, with its own group commit); checkpoint_after_bytes = \
               u64::MAX; replay = reopening the log and reading every chunk in recovery; no \
               index and no expected-version check",
    open,
};

/// Counts the chunks recovery hands over.
#[derive(Debug, Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl LogManager for Counter {
    fn recover(&mut self, entry: &mut Entry<'_>) -> io::Result<()> {
        if let Some(chunks) = entry.read_all_chunks()? {
            self.0.fetch_add(chunks.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: EntryId,
        _entries: &mut SegmentReader,
        _wal: &WriteAheadLog,
    ) -> io::Result<()> {
        Ok(())
    }
}

struct Okaywal {
    dir: std::path::PathBuf,
    wal: std::sync::Mutex<Option<WriteAheadLog>>,
}

fn configuration(dir: &Path) -> Configuration {
    Configuration::default_for(dir).checkpoint_after_bytes(u64::MAX)
}

fn open(dir: &Path, _bulk: bool) -> Res<Box<dyn Engine>> {
    let wal = configuration(dir).open(Counter::default()).map_err(err)?;
    Ok(Box::new(Okaywal {
        dir: dir.to_path_buf(),
        wal: std::sync::Mutex::new(Some(wal)),
    }))
}

impl Okaywal {
    fn log(&self) -> Res<WriteAheadLog> {
        self.wal
            .lock()
            .map_err(err)?
            .clone()
            .ok_or_else(|| "log closed".to_string())
    }
}

impl Engine for Okaywal {
    fn append(&self, _stream: &str, _expected: Expected, events: &[Ev]) -> Res<()> {
        let wal = self.log()?;
        let mut writer = wal.begin_entry().map_err(err)?;
        for (i, ev) in (0u64..).zip(events) {
            writer.write_chunk(&encode(ev, i)).map_err(err)?;
        }
        writer.commit().map(|_| ()).map_err(err)
    }

    fn load(&self, events: &[Ev]) -> Res<()> {
        self.append("", Expected::Any, events)
    }

    fn replay(&self) -> Res<u64> {
        // Close the log, then reopen it: recovery reads every entry.
        self.wal.lock().map_err(err)?.take();
        let counter = Counter::default();
        let wal = configuration(&self.dir)
            .open(counter.clone())
            .map_err(err)?;
        *self.wal.lock().map_err(err)? = Some(wal);
        Ok(counter.0.load(Ordering::Relaxed))
    }

    fn read_stream(&self, _stream: &str) -> Option<Res<usize>> {
        None
    }
}
