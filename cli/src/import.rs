//! `annals import DIR [FILE]`: events in from JSON Lines, as `dump` writes them.
//!
//! Each line's version must follow its stream's (in the store, or earlier in the input), so
//! the imported store holds the same streams, versions, types, ids, timestamps, payloads and
//! metadata; read in the dump's order, every event also gets the position it had. Lines go
//! to the store in order, up to 1,000 events or 4 MiB at a time through one
//! [`Store::append_many`] (consecutive lines of one stream in one append), `Buffered` and
//! synced at the end (and before reporting a bad line). Events a stream already holds (by
//! version) are skipped, so running the same import again, or again after it was cut short,
//! is harmless. A bad line stops the import after what came before it; an append the store
//! refuses (an id it holds elsewhere in the stream) stops it too, after the rest of its batch
//! (up to 1,000 events, other streams) went in, which a re-run skips. Retention rules and
//! deletes are not events: a dump does not carry them (a backup does).

use std::collections::HashMap;
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

/// Events of one stream with consecutive versions, to be one append.
struct Run {
    stream: String,
    first_version: u64,
    /// The input lines of the first and the last event.
    first_line: usize,
    last_line: usize,
    events: Vec<EventData>,
}

/// Runs waiting to be appended together, and the next version of each stream they touch.
#[derive(Default)]
struct Pending {
    runs: Vec<Run>,
    events: usize,
    bytes: usize,
    next: HashMap<String, u64>,
}

impl Pending {
    /// Adds the event of line `number`, or counts it as held already; an error if its version
    /// does not follow its stream's.
    fn add(
        &mut self,
        store: &Store,
        number: usize,
        p: Parsed,
        counts: &mut Counts,
    ) -> CliResult<()> {
        let next = match self.next.get(&p.stream) {
            Some(&next) => next,
            None => store
                .try_stream_version(&p.stream)
                .map_err(|e| format!("line {number}: {e}"))?
                .map_or(0, |v| v + 1),
        };
        if p.version < next {
            counts.skipped += 1;
            return Ok(());
        }
        if p.version > next {
            return Err(format!(
                "line {number}: stream {:?} is at version {next} next, but the line has \
                 version {}: a stream's versions must follow each other",
                p.stream, p.version
            ));
        }
        self.next.insert(p.stream.clone(), next + 1);
        self.events += 1;
        self.bytes += p.len;
        match self.runs.last_mut() {
            Some(run) if run.stream == p.stream => {
                run.events.push(p.event);
                run.last_line = number;
            }
            _ => self.runs.push(Run {
                stream: p.stream,
                first_version: p.version,
                first_line: number,
                last_line: number,
                events: vec![p.event],
            }),
        }
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.events >= MAX_EVENTS || self.bytes >= MAX_BYTES
    }

    /// Appends every run in one go; the first failure names its line.
    fn flush(&mut self, store: &Store, counts: &mut Counts) -> CliResult<()> {
        let runs = std::mem::take(&mut self.runs);
        (self.events, self.bytes) = (0, 0);
        self.next.clear();
        let lines: Vec<(usize, usize, u64)> = runs
            .iter()
            .map(|r| (r.first_line, r.last_line, r.events.len() as u64))
            .collect();
        let appends = runs.into_iter().map(|r| {
            let expected = match r.first_version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v - 1),
            };
            (r.stream, expected, r.events)
        });
        let results = store.append_many(appends).map_err(|e| e.to_string())?;
        let mut failure = None;
        for (result, (first, last, n)) in results.into_iter().zip(lines) {
            match result {
                Ok(r) if r.deduplicated => counts.skipped += n,
                Ok(_) => counts.appended += n,
                Err(e) => {
                    let lines = match first == last {
                        true => format!("line {first}"),
                        false => format!("lines {first} to {last}"),
                    };
                    failure.get_or_insert(format!("{lines}: {e}"));
                }
            }
        }
        failure.map_or(Ok(()), Err)
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
    let reader = std::thread::spawn(move || parse_lines(input, &tx));
    let mut pending = Pending::default();
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
                let added = pending.add(&store, number, parsed, &mut counts);
                let flushed = match pending.is_full() {
                    true => pending.flush(&store, &mut counts),
                    false => Ok(()),
                };
                if let Err(e) = added.and(flushed) {
                    break 'lines Some(e);
                }
            }
        }
        None
    };
    // What came before a bad line stays imported.
    let flushed = pending.flush(&store, &mut counts).err();
    // A parser that panicked ended the input early: that is a failure, not the end.
    let parser = reader
        .join()
        .err()
        .map(|_| "internal error: the line parser stopped".to_string());
    let closed = store.close().err().map(|e| e.to_string());
    bar.finish_and_clear();
    let problems: Vec<String> = [failure, flushed, parser, closed]
        .into_iter()
        .flatten()
        .collect();
    if !problems.is_empty() {
        return Err(format!(
            "{} ({} events imported, {} already in the store)",
            problems.join("; then: "),
            counts.appended,
            counts.skipped
        ));
    }
    println!(
        "imported {} events ({} already in the store, skipped)",
        counts.appended, counts.skipped
    );
    Ok(ExitCode::SUCCESS)
}
