//! `annals stat`, `annals verify` and `annals checkpoints`: what is in a store, and whether
//! it is sound.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::ExitCode;

use annals::{RecordedEvent, Store};
use serde_json::{json, Value};

use crate::line::format_time;
use crate::{progress, CliResult};

pub fn stat(dir: &Path, as_json: bool) -> CliResult<ExitCode> {
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let next = store.next_position();
    let report = store.open_report();
    let (on_disk, apparent, files) = disk_usage(dir)?;
    let first = event_at(&store, 0)?;
    let last = match next {
        0 => None,
        n => event_at(&store, n - 1)?,
    };
    let checkpoints = checkpoint_rows(&store)?;
    let ruled = store.retentions().len();
    let reclaimable = store.reclaimable().map_err(|e| e.to_string())?;
    let stat = json!({
        "store": dir.display().to_string(),
        "segments": report.segments,
        "events": next,
        "streams": report.streams,
        "files": files,
        "bytes_on_disk": on_disk,
        "bytes_apparent": apparent,
        "first": first.as_ref().map(summary),
        "last": last.as_ref().map(summary),
        "checkpoints": checkpoints,
        "retention": {
            "streams_with_rules": ruled,
            "reclaimable_events": reclaimable.events,
            "reclaimable_bytes": reclaimable.bytes,
        },
        "opening": {
            "duration_ms": report.duration.as_secs_f64() * 1000.0,
            "snapshot_position": report.snapshot_position,
            "snapshot_ignored": report.snapshot_ignored,
            "unread_tail": report.unread_tail.as_ref().map(|t| json!({
                "file": t.file.display().to_string(), "offset": t.offset, "reason": t.reason,
            })),
            "side_files_rebuilt_in_memory": report.rebuilt_indexes.iter().map(|r| json!({
                "file": r.file.display().to_string(), "reason": r.reason,
            })).collect::<Vec<_>>(),
        },
    });
    if as_json {
        println!("{stat}");
        return Ok(ExitCode::SUCCESS);
    }
    println!("store        {}", dir.display());
    println!("segments     {}", report.segments);
    println!("events       {next} (positions 0..{next})");
    println!("streams      {}", report.streams);
    println!("bytes        {on_disk} on disk, {apparent} apparent, in {files} files");
    for (label, ev) in [("first event ", &first), ("last event  ", &last)] {
        if let Some(ev) = ev {
            println!("{label} {}", describe(ev));
        }
    }
    match checkpoints.as_slice() {
        [] => println!("checkpoints  none"),
        rows => {
            for (i, row) in rows.iter().enumerate() {
                let label = if i == 0 {
                    "checkpoints "
                } else {
                    "            "
                };
                println!("{label} {}", checkpoint_text(row));
            }
        }
    }
    println!(
        "retention    {ruled} streams with rules of their own (soft deletes among them); \
         reclaimable by `annals compact`: {} events, {} bytes in {} streams",
        reclaimable.events, reclaimable.bytes, reclaimable.streams
    );
    println!("opening      {}", opening_text(report));
    Ok(ExitCode::SUCCESS)
}

pub fn verify(dir: &Path) -> CliResult<ExitCode> {
    let bar = progress::bar(0, "segments");
    let report = annals::verify_with_progress(dir, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .map_err(|e| e.to_string())?;
    bar.finish_and_clear();
    for d in &report.damages {
        let stream = d
            .stream
            .as_ref()
            .map_or(String::new(), |s| format!(" (stream {s:?})"));
        println!(
            "damaged: {} at offset {}{stream}: {}",
            d.file.display(),
            d.offset,
            d.problem
        );
    }
    if let Some(t) = &report.torn_tail {
        println!(
            "torn tail (not damage): {} at offset {}: {}; a write a crash cut short, never \
             acknowledged: the next writable opening removes it",
            t.file.display(),
            t.offset,
            t.problem
        );
    }
    let verdict = match report.damages.len() {
        0 => "sound".to_string(),
        n => format!("{n} damaged places"),
    };
    println!(
        "{} files, {} events, {} bytes of frames read in {:.2?}: {verdict}",
        report.files, report.events, report.bytes, report.duration
    );
    Ok(if report.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn checkpoints(dir: &Path) -> CliResult<ExitCode> {
    let store = Store::open_read_only(dir).map_err(|e| e.to_string())?;
    let rows = checkpoint_rows(&store)?;
    if rows.is_empty() {
        println!("no checkpoints");
    }
    for row in &rows {
        println!("{}", checkpoint_text(row));
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams with rules of their own, and the events their `truncate_before` and `max_count`
/// hide (those `max_age` hides depend on the clock and are not counted).
/// Every checkpoint with how far behind the end of the log it is, and every damaged one.
fn checkpoint_rows(store: &Store) -> CliResult<Vec<Value>> {
    let next = store.next_position();
    let mut rows: Vec<Value> = store
        .checkpoints()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|(name, position)| {
            json!({"name": name, "position": position, "behind": next.saturating_sub(position)})
        })
        .collect();
    let damaged = store.damaged_checkpoints().map_err(|e| e.to_string())?;
    rows.extend(
        damaged
            .into_iter()
            .map(|(name, e)| json!({"name": name, "damaged": e.to_string()})),
    );
    Ok(rows)
}

fn checkpoint_text(row: &Value) -> String {
    match row.get("damaged") {
        Some(problem) => format!(
            "{}: damaged: {}",
            row["name"].as_str().unwrap_or("?"),
            problem
        ),
        None => format!(
            "{}: position {}, {} events behind",
            row["name"].as_str().unwrap_or("?"),
            row["position"],
            row["behind"]
        ),
    }
}

fn opening_text(report: &annals::OpenReport) -> String {
    let mut parts = vec![format!("{:.1?}", report.duration)];
    match (report.snapshot_position, &report.snapshot_ignored) {
        (Some(p), _) => parts.push(format!("index snapshot used up to position {p}")),
        (None, Some(why)) => parts.push(format!("index snapshot not used: {why}")),
        (None, None) => parts.push("no index snapshot".into()),
    }
    if let Some(t) = &report.unread_tail {
        parts.push(format!(
            "tail ends in an incomplete frame at offset {} of {} ({}): a write in progress, or \
             torn by a crash",
            t.offset,
            t.file.display(),
            t.reason
        ));
    }
    if !report.rebuilt_indexes.is_empty() {
        parts.push(format!(
            "{} side files missing or damaged, rebuilt in memory",
            report.rebuilt_indexes.len()
        ));
    }
    parts.join("; ")
}

/// The event at `position`, if there is one.
fn event_at(store: &Store, position: u64) -> CliResult<Option<RecordedEvent>> {
    store
        .read_all(position)
        .next()
        .transpose()
        .map_err(|e| e.to_string())
}

fn summary(ev: &RecordedEvent) -> Value {
    json!({
        "position": ev.position(),
        "stream": ev.stream(),
        "timestamp": ev.timestamp(),
        "time": format_time(ev.timestamp()),
    })
}

fn describe(ev: &RecordedEvent) -> String {
    format!(
        "position {}, stream {:?}, {}",
        ev.position(),
        ev.stream(),
        format_time(ev.timestamp()).unwrap_or_else(|| format!("{} µs", ev.timestamp()))
    )
}

/// Bytes on disk (allocated blocks), apparent bytes, and files under `dir`.
pub(crate) fn disk_usage(dir: &Path) -> CliResult<(u64, u64, u64)> {
    let mut total = (0, 0, 0);
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            let (a, b, c) = disk_usage(&entry.path())?;
            total = (total.0 + a, total.1 + b, total.2 + c);
        } else {
            total = (
                total.0 + meta.blocks() * 512,
                total.1 + meta.len(),
                total.2 + 1,
            );
        }
    }
    Ok(total)
}
