//! An event's schema changes; the events already stored do not. `UserAgreementAccepted`
//! events were written without a `revision` field, and new code needs one (an old event is
//! revision 1). This example does what the teams we build for did by hand, both ways:
//!
//! 1. **Active migration**: an upcaster turns an old event into the new shape on every read;
//!    the stored bytes stay as they are, and new code reads one shape only.
//! 2. **Passive migration**: the whole store is copied into a new one through the same
//!    shape change while a writer keeps appending to the old one: a first pass copies the
//!    bulk, a second what arrived meanwhile; then the writer pauses, a last pass copies the
//!    rest, the copy is checked stream by stream, and the application switches to the new
//!    store, which holds the new shape and needs no upcaster.
//!
//! ```text
//! cargo run --release --example migration -- [DIR] [--users N]
//! ```
//!
//! `DIR` (default `target/example-stores/migration`, emptied first) gets `v1/` and `v2/`; a
//! `DIR` of your own must be new or empty. `--users N` (default 20,000) users accept the
//! agreement five times each before the migration.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use annals::{EventData, ExpectedVersion, Options, RecordedEvent, Store};

const ACCEPTED: &str = "UserAgreementAccepted";

/// The payload with `"revision":1` added when it has no revision; `None` when it has one.
fn with_revision(payload: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(payload).ok()?;
    if text.contains("\"revision\"") {
        return None;
    }
    let body = text.trim_end().strip_suffix('}')?;
    Some(format!("{body},\"revision\":1}}").into_bytes())
}

/// The upcaster: an agreement without a revision is revision 1 (metadata kept).
fn upcast(ev: &RecordedEvent) -> Option<EventData> {
    let payload = with_revision(ev.payload())?;
    Some(EventData::new(ACCEPTED, payload).metadata(ev.metadata().to_vec()))
}

/// The copy's transform: the event as read, i.e. through the source's upcaster. (A copy
/// could also split, merge, rename or drop events here.)
fn transform(ev: &RecordedEvent) -> Vec<EventData> {
    vec![EventData::new(ev.event_type(), ev.payload().to_vec()).metadata(ev.metadata().to_vec())]
}

fn accepted(user: u64, revision: Option<u32>) -> EventData {
    let payload = match revision {
        Some(r) => format!("{{\"user\":{user},\"terms\":\"2026-06\",\"revision\":{r}}}"),
        None => format!("{{\"user\":{user},\"terms\":\"2024-01\"}}"),
    };
    EventData::new(ACCEPTED, payload.into_bytes())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let users: u64 = match args.iter().position(|a| a == "--users") {
        Some(at) => args.get(at + 1).ok_or("--users needs a number")?.parse()?,
        None => 20_000,
    };
    let dir = match args.first().filter(|a| !a.starts_with("--")) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
                return Err(format!("{} is not empty: pass a new directory", dir.display()).into());
            }
            dir
        }
        None => {
            let dir = PathBuf::from("target/example-stores/migration");
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            dir
        }
    };
    let (old, new) = (dir.join("v1"), dir.join("v2"));

    // Years of events in the old shape.
    {
        let store = Store::open(&old)?;
        for round in 0..5 {
            let batch: Vec<_> = (0..users)
                .map(|u| {
                    (
                        format!("user-{u}"),
                        ExpectedVersion::Any,
                        vec![accepted(u + round, None)],
                    )
                })
                .collect();
            store.append_many(batch)?;
        }
        println!("v1: {} events, none with a revision", store.next_position());
    }

    // 1. Active migration: the application opens the store with the upcaster.
    let store = Store::open_with(&old, Options::default().upcaster(ACCEPTED, upcast))?;
    let first = store
        .read_stream("user-7", 0)
        .next()
        .ok_or("user-7 has events")??;
    println!(
        "read through the upcaster: {}  (stored: {})",
        String::from_utf8_lossy(first.payload()),
        String::from_utf8_lossy(&stored_payload(&store, first.position())?)
    );

    // 2. Passive migration while a writer keeps appending (new code: revision 2).
    let stop = AtomicBool::new(false);
    let written = AtomicU64::new(0);
    let switch = std::thread::scope(|s| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
        let writer = s.spawn(|| -> annals::Result<()> {
            let mut user = 0;
            while !stop.load(Ordering::Relaxed) {
                store.append(
                    &format!("user-{user}"),
                    ExpectedVersion::Any,
                    [accepted(user, Some(2))],
                )?;
                written.fetch_add(1, Ordering::Relaxed);
                user = (user + 7919) % users;
            }
            Ok(())
        });
        for pass in 1..=2 {
            let report = store.copy_to(&new, transform)?;
            println!(
                "pass {pass}: positions {}..{}, {} events copied in {:.2?} (writer: {} appended so far)",
                report.from,
                report.to,
                report.events_out,
                report.duration,
                written.load(Ordering::Relaxed)
            );
        }
        // The switch: pause the writer, copy the rest, check, then write to the new store.
        let paused = Instant::now();
        stop.store(true, Ordering::Relaxed);
        writer.join().map_err(|_| "the writer panicked")??;
        let last = store.copy_to(&new, transform)?;
        let check = store.verify_copy(&new, transform)?;
        if !check.matches() {
            return Err(format!("the copy differs: {:?}", check.differences).into());
        }
        println!(
            "last pass: {} events in {:.2?}; verify: {} events in, {} out, no difference",
            last.events_out, last.duration, check.events_in, check.events_out
        );
        Ok((paused, store.next_position()))
    });
    let (paused, source_events) = switch.map_err(|e| e.to_string())?;
    drop(store);
    let store = Store::open(&new)?; // no upcaster needed any more
    println!(
        "switched to v2 after a pause of {:.2?}: {} events (v1 had {source_events})",
        paused.elapsed(),
        store.next_position()
    );
    store.append("user-7", ExpectedVersion::Any, [accepted(7, Some(2))])?;

    // Every agreement in v2 has its revision in the stored bytes.
    let mut revisions = [0u64; 2];
    for ev in store.read_all(0) {
        let ev = ev?;
        let text = String::from_utf8_lossy(ev.payload()).into_owned();
        let revision = ["\"revision\":1", "\"revision\":2"]
            .iter()
            .position(|r| text.contains(r))
            .ok_or_else(|| format!("v2 position {}: no revision in {text}", ev.position()))?;
        revisions[revision] += 1;
    }
    println!(
        "v2: {} events of revision 1, {} of revision 2",
        revisions[0], revisions[1]
    );
    Ok(())
}

/// The bytes stored at `position`, as a store opened without upcasters reads them.
fn stored_payload(store: &Store, position: u64) -> annals::Result<Vec<u8>> {
    let mut stored = Vec::new();
    store.scan_all(position, |ev| {
        stored = ev.payload().to_vec();
        ControlFlow::Break(())
    })?;
    Ok(stored)
}
