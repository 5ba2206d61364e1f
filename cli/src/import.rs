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
use std::sync::mpsc::SyncSender;

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

/// A line read and parsed: the event with its line number and the bytes read up to it, or
/// what is wrong (with the line number), which ends the input.
enum Line {
    Event(usize, u64, Parsed),
    Bad(String),
}

/// Reads and parses `input` a line at a time, sending the lines in chunks; stops at the first
/// bad line, at the end, or when the receiver is gone.
fn parse_lines(input: Box<dyn BufRead + Send>, tx: &SyncSender<Vec<Line>>) {
    let mut chunk = Vec::with_capacity(1024);
    let mut read = 0;
    for (i, text) in input.lines().enumerate() {
        let number = i + 1;
        let line = match text {
            Err(e) => Line::Bad(format!("reading line {number}: {e}")),
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => {
                read += text.len() as u64 + 1;
                match parse_line(&text) {
                    Ok(parsed) => Line::Event(number, read, parsed),
                    Err(problem) => Line::Bad(format!("line {number}: {problem}")),
                }
            }
        };
        let bad = matches!(line, Line::Bad(_));
        chunk.push(line);
        if !bad && chunk.len() < 1024 {
            continue;
        }
        let sent = tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(1024)));
        if sent.is_err() || bad {
            return;
        }
    }
    let _ = tx.send(chunk);
}

#[derive(Default)]
struct Counts {
    appended: u64,
    skipped: u64,
}

pub fn import(dir: &Path, file: Option<&Path>) -> CliResult<ExitCode> {
    let (input, total): (Box<dyn BufRead + Send>, Option<u64>) = match file {
        Some(path) => {
            let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let len = f.metadata().ok().map(|m| m.len());
            (Box::new(BufReader::with_capacity(1 << 20, f)), len)
        }
        None => (
            Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
            None,
        ),
    };
    let bar = total.map_or_else(|| progress::counter("bytes"), |t| progress::bar(t, "bytes"));
    let options = Options::default().durability(Durability::Buffered);
    let store = Store::open_with(dir, options).map_err(|e| e.to_string())?;
    // Lines are read and parsed on a thread of their own while this one appends.
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    std::thread::spawn(move || parse_lines(input, &tx));
    let mut batch = Batch::default();
    let mut counts = Counts::default();
    let failure = 'lines: {
        for chunk in rx {
            for line in chunk {
                let (number, read, parsed) = match line {
                    Line::Event(number, read, parsed) => (number, read, parsed),
                    Line::Bad(problem) => break 'lines Some(problem),
                };
                if number % 4096 == 0 {
                    bar.set_position(read);
                }
                if !batch.continues(&parsed) {
                    if let Err(e) = append(&store, &mut batch, &mut counts) {
                        break 'lines Some(e);
                    }
                    batch.stream = parsed.stream;
                    batch.first_version = parsed.version;
                    batch.first_line = number;
                }
                batch.bytes += parsed.len;
                batch.events.push(parsed.event);
            }
        }
        None
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
