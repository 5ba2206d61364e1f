//! `annals dump` and `annals tail`: events out as JSON Lines on stdout.

use std::io::{BufWriter, ErrorKind, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use annals::{RecordedEvent, Store};

use crate::{line, progress, CliResult, Filter};

/// Prints the events `filter` selects, in position order.
pub fn dump(dir: &Path, filter: &Filter) -> CliResult<ExitCode> {
    let store = open(dir)?;
    let end = filter.to.unwrap_or(u64::MAX).min(store.next_position());
    // Through an index where one fits: the stream's, or the type or category index.
    let events: Box<dyn Iterator<Item = annals::Result<RecordedEvent>>> =
        match (&filter.stream, &filter.event_type, &filter.category) {
            (Some(stream), _, _) => Box::new(store.read_stream(stream, 0)),
            (None, Some(t), _) => Box::new(store.read_by_type(t, filter.from)),
            (None, None, Some(c)) if !c.is_empty() && !c.contains('-') => {
                Box::new(store.read_category(c, filter.from))
            }
            (None, _, _) => Box::new(store.read_all(filter.from)),
        };
    let bar = progress::bar(end.saturating_sub(filter.from), "positions");
    let mut out = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut printed = 0;
    for ev in events {
        let ev = ev.map_err(|e| e.to_string())?;
        if ev.position() >= end || filter.limit.is_some_and(|l| printed >= l) {
            break;
        }
        if ev.position() % 65_536 == 0 {
            bar.set_position(ev.position().saturating_sub(filter.from));
        }
        if ev.position() < filter.from || !filter.matches(&ev) {
            continue;
        }
        if !print(&mut out, &ev)? {
            return Ok(ExitCode::SUCCESS);
        }
        printed += 1;
    }
    bar.finish_and_clear();
    flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

impl Filter {
    fn matches(&self, ev: &RecordedEvent) -> bool {
        let in_category = |c: &String| {
            ev.stream()
                .strip_prefix(c.as_str())
                .is_some_and(|rest| rest.starts_with('-'))
        };
        self.category.as_ref().is_none_or(in_category)
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| ev.event_type() == t)
            && self.since.is_none_or(|t| ev.timestamp() >= t)
            && self.until.is_none_or(|t| ev.timestamp() < t)
    }
}

/// Follows the store: prints every event from the start position on, then looks again every
/// `poll_ms`. A read-only handle sees the log as it was when it opened or last refreshed, so
/// a look that finds the segment files changed (their number, or the newest one's
/// modification time), or that comes a second after the last refresh (file times are
/// coarse), refreshes it. With `checkpoint`, starts there and saves the position after each
/// printed batch.
pub fn tail(
    dir: &Path,
    from: Option<u64>,
    checkpoint: Option<&str>,
    limit: Option<u64>,
    poll_ms: u64,
) -> CliResult<ExitCode> {
    let mut stamp = log_stamp(dir);
    let mut refreshed = Instant::now();
    let store = open(dir)?;
    // A consumer with a checkpoint starts where it left off, or at the beginning the first
    // time; without one, tail starts at the end.
    let start = match checkpoint {
        Some(name) => store
            .checkpoint(name)
            .map_err(|e| e.to_string())?
            .unwrap_or(0),
        None => store.next_position(),
    };
    let mut cursor = from.unwrap_or(start);
    let mut printed = 0;
    let mut out = BufWriter::new(std::io::stdout().lock());
    loop {
        let before = cursor;
        for ev in store.read_all(cursor) {
            if limit.is_some_and(|l| printed >= l) {
                break;
            }
            let ev = ev.map_err(|e| e.to_string())?;
            if !print(&mut out, &ev)? {
                return Ok(ExitCode::SUCCESS);
            }
            cursor = ev.position() + 1;
            printed += 1;
        }
        if !flush(&mut out)? {
            return Ok(ExitCode::SUCCESS);
        }
        if let (Some(name), true) = (checkpoint, cursor > before) {
            store
                .save_checkpoint(name, cursor)
                .map_err(|e| e.to_string())?;
        }
        if limit.is_some_and(|l| printed >= l) {
            return Ok(ExitCode::SUCCESS);
        }
        loop {
            std::thread::sleep(Duration::from_millis(poll_ms));
            let now = log_stamp(dir);
            if now != stamp || refreshed.elapsed() >= Duration::from_secs(1) {
                (stamp, refreshed) = (now, Instant::now());
                break;
            }
        }
        store.refresh().map_err(|e| e.to_string())?;
    }
}

/// The number of segment files and the newest one's modification time: what a write changes.
fn log_stamp(dir: &Path) -> Option<(usize, SystemTime)> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    let newest = std::fs::metadata(logs.last()?).ok()?.modified().ok()?;
    Some((logs.len(), newest))
}

fn open(dir: &Path) -> CliResult<Store> {
    Store::open_read_only(dir).map_err(|e| e.to_string())
}

/// Writes one event's line; `false` if stdout was closed (`| head`), which ends the command
/// quietly.
fn print(out: &mut impl Write, ev: &RecordedEvent) -> CliResult<bool> {
    written(writeln!(out, "{}", line::to_line(ev)))
}

fn flush(out: &mut impl Write) -> CliResult<bool> {
    written(out.flush())
}

/// A write to stdout: `true` if it went through, `false` if stdout was closed.
fn written(result: std::io::Result<()>) -> CliResult<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(format!("writing to stdout: {e}")),
    }
}
