//! `annals compact DIR` and `annals erase DIR STREAM`: the two commands that change a store.
//! Both open it for writing, so the application that writes it must be stopped (or call
//! `Store::compact` / `Store::erase_stream` itself); erasure asks for confirmation.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use annals::{Error, Store};

use crate::{progress, CliResult};

/// Opens the store in `dir` for writing (never creating one); a store open elsewhere gets an
/// error that says what to do.
fn open_writable(dir: &Path) -> CliResult<Store> {
    // A read-only opening first: it refuses a directory that holds no store.
    drop(Store::open_read_only(dir).map_err(|e| e.to_string())?);
    Store::open(dir).map_err(|e| match e {
        Error::Locked { .. } => format!(
            "{e}: stop the application that has it open, or have it call Store::compact or \
             Store::erase_stream itself (both run while it appends)"
        ),
        e => e.to_string(),
    })
}

pub fn compact(dir: &Path) -> CliResult<ExitCode> {
    let store = open_writable(dir)?;
    let bar = progress::bar(0, "segment steps");
    let report = store
        .compact_with_progress(|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    println!(
        "compacted {}: {} events removed, {} of {} sealed segments rewritten, {} bytes \
         reclaimed ({} -> {}) in {:.2?}",
        dir.display(),
        report.events_removed,
        report.segments_rewritten,
        report.segments_read,
        report.bytes_reclaimed(),
        report.bytes_before,
        report.bytes_after,
        report.duration
    );
    Ok(ExitCode::SUCCESS)
}

pub fn erase(dir: &Path, stream: &str, yes: bool) -> CliResult<ExitCode> {
    let store = open_writable(dir)?;
    let Some(last) = store.stream_version(stream) else {
        return Err(format!(
            "stream {stream:?} has no events in {}",
            dir.display()
        ));
    };
    if !yes {
        confirm(stream, last + 1)?;
    }
    let report = store.erase_stream(stream).map_err(|e| e.to_string())?;
    println!(
        "erased stream {stream:?}: {} events removed, {} segments rewritten ({} -> {} bytes) \
         in {:.2?}",
        report.events_removed,
        report.segments_rewritten,
        report.bytes_before,
        report.bytes_after,
        report.duration
    );
    Ok(ExitCode::SUCCESS)
}

/// Asks on the terminal for the stream's name; refuses when stdin is not a terminal.
fn confirm(stream: &str, events: u64) -> CliResult<()> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(format!(
            "erasing removes every trace of stream {stream:?} and cannot be undone: pass --yes \
             to confirm when not on a terminal"
        ));
    }
    eprint!(
        "Erase stream {stream:?} ({events} events)? Every trace of it is removed and this \
         cannot be undone.\nType the stream's name to confirm: "
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| format!("read the confirmation: {e}"))?;
    match answer.trim_end_matches(['\n', '\r']) == stream {
        true => Ok(()),
        false => Err("not confirmed: nothing was erased".into()),
    }
}
