//! `annals import DIR [FILE]`: events in from JSON Lines, as `dump` writes them.
//!
//! Consecutive lines of one stream with consecutive versions become one append (up to 1,000
//! events or 4 MiB), checked against the version the line names, so the imported store holds
//! the same streams, versions, types, ids, timestamps, payloads and metadata; read in the
//! dump's order, every event also gets the position it had. Appends are `Buffered` and synced
//! at the end (and before reporting a bad line). Events a stream already holds (by version)
//! are skipped, so running the same import again, or again after it was cut short, is
//! harmless.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

use annals::{Durability, EventData, ExpectedVersion, Options, Store};

use crate::line::{parse_line, Parsed};
use crate::{progress, CliResult};

const MAX_EVENTS: usize = 1_000;
const MAX_BYTES: usize = 4 << 20;

/// Events of one stream with consecutive versions, waiting to be appended.
#[derive(Default)]
struct Batch {
    stream: String,
    first_version: u64,
    /// The input line of the first event.
    first_line: usize,
    events: Vec<EventData>,
    bytes: usize,
}

impl Batch {
    fn continues(&self, p: &Parsed) -> bool {
        !self.events.is_empty()
            && p.stream == self.stream
            && p.version == self.first_version + self.events.len() as u64
            && self.events.len() < MAX_EVENTS
            && self.bytes < MAX_BYTES
    }
}

#[derive(Default)]
struct Counts {
    appended: u64,
    skipped: u64,
}

pub fn import(dir: &Path, file: Option<&Path>) -> CliResult<ExitCode> {
    let (input, total): (Box<dyn BufRead>, Option<u64>) = match file {
        Some(path) => {
            let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(BufReader::with_capacity(1 << 20, f)), len)
        }
        None => (Box::new(std::io::stdin().lock()), None),
    };
    let bar = total.map_or_else(|| progress::counter("bytes"), |t| progress::bar(t, "bytes"));
    let options = Options::default().durability(Durability::Buffered);
    let store = Store::open_with(dir, options).map_err(|e| e.to_string())?;
    let mut batch = Batch::default();
    let mut counts = Counts::default();
    let mut read = 0;
    let mut lines = input.lines();
    let mut number = 0;
    let failure = loop {
        number += 1;
        let text = match lines.next() {
            None => break None,
            Some(Ok(text)) => text,
            Some(Err(e)) => break Some(format!("reading line {number}: {e}")),
        };
        read += text.len() as u64 + 1;
        if number % 4096 == 0 {
            bar.set_position(read);
        }
        if text.trim().is_empty() {
            continue;
        }
        let parsed = match parse_line(&text) {
            Ok(parsed) => parsed,
            Err(problem) => break Some(format!("line {number}: {problem}")),
        };
        if !batch.continues(&parsed) {
            if let Err(e) = append(&store, &mut batch, &mut counts) {
                break Some(e);
            }
            batch.stream = parsed.stream;
            batch.first_version = parsed.version;
            batch.first_line = number;
        }
        batch.bytes += parsed.len;
        batch.events.push(parsed.event);
    };
    // What came before a bad line stays imported.
    let flushed = append(&store, &mut batch, &mut counts);
    let failure = failure.or(flushed.err());
    store.close().map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    if let Some(problem) = failure {
        return Err(format!(
            "{problem} (the {} events before it were imported)",
            counts.appended
        ));
    }
    println!(
        "imported {} events ({} already in the store, skipped)",
        counts.appended, counts.skipped
    );
    Ok(ExitCode::SUCCESS)
}

/// Appends the batch, without the events its stream already holds; empties it.
fn append(store: &Store, batch: &mut Batch, counts: &mut Counts) -> CliResult<()> {
    let mut events = std::mem::take(&mut batch.events);
    batch.bytes = 0;
    if events.is_empty() {
        return Ok(());
    }
    let held = store
        .try_stream_version(&batch.stream)
        .map_err(|e| e.to_string())?
        .map_or(0, |v| v + 1);
    let skip = held
        .saturating_sub(batch.first_version)
        .min(events.len() as u64);
    counts.skipped += skip;
    events.drain(..skip as usize);
    let first = batch.first_version + skip;
    if events.is_empty() {
        return Ok(());
    }
    let expected = match first {
        0 => ExpectedVersion::NoStream,
        v => ExpectedVersion::Exact(v - 1),
    };
    let n = events.len() as u64;
    let line = batch.first_line + skip as usize;
    match store.append(&batch.stream, expected, events) {
        Ok(r) if r.deduplicated => counts.skipped += n,
        Ok(_) => counts.appended += n,
        Err(e) => return Err(format!("line {line}: {e}")),
    }
    Ok(())
}
