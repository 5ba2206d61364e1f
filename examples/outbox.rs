//! Guaranteed publishing without dual writes: the events in the store are the outbox. A relay
//! reads from its durable cursor, publishes each event, and only then saves the cursor. A crash
//! between publishing and saving republishes a few events, never loses one; consumers drop the
//! repeats by event id.
//!
//! ```text
//! cargo run --release --example outbox -- [DIR] [--crash-after N]
//! ```
//!
//! `DIR` defaults to `target/example-stores/outbox`. `--crash-after N` stops the relay after
//! publishing N events without saving its cursor, as a crash would; run again to see it
//! resume and republish.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use annals::{EventData, ExpectedVersion, Store};

const CURSOR: &str = "outbox-relay";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().filter(|a| !a.starts_with("--")).map_or_else(
        || PathBuf::from("target/example-stores/outbox"),
        PathBuf::from,
    );
    let crash_after = args
        .iter()
        .position(|a| a == "--crash-after")
        .and_then(|at| args.get(at + 1)?.parse::<u64>().ok());
    let store = Store::open(&dir)?;

    // The application's own write: orders placed, each event with an id.
    let first = store.next_position();
    for n in first..first + 10 {
        let event = EventData::new("OrderPlaced", format!("{{\"order\":{n}}}").into_bytes())
            .id(u128::from(n) + 1);
        store.append(&format!("order-{n}"), ExpectedVersion::NoStream, [event])?;
    }

    // The relay: publish from the cursor, then save the cursor.
    let broker = dir.join("broker.log");
    let mut published = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&broker)?;
    let from = store.checkpoint(CURSOR)?.unwrap_or(0);
    let mut sub = store.subscribe_all(from);
    let (mut count, mut saved) = (0, from);
    while let Some(event) = sub.try_next()? {
        let id = event.id().unwrap_or_default();
        writeln!(
            published,
            "{id} {} {}",
            event.event_type(),
            String::from_utf8_lossy(event.payload())
        )?;
        published.sync_data()?;
        count += 1;
        if Some(count) == crash_after {
            println!("crashed after publishing {count} events, with the cursor saved at {saved}");
            return Ok(());
        }
        saved = event.position() + 1;
        store.save_checkpoint(CURSOR, saved)?;
    }
    println!(
        "published {count} events from position {from}; cursor now {}",
        sub.position()
    );

    // A consumer of the broker drops repeats by event id.
    let lines = std::fs::read_to_string(&broker)?;
    let mut seen = HashSet::new();
    let repeats = lines
        .lines()
        .filter(|l| !seen.insert(l.split(' ').next().unwrap_or_default().to_string()))
        .count();
    println!(
        "broker holds {} messages: {} distinct events, {repeats} repeats dropped by id",
        lines.lines().count(),
        seen.len()
    );
    Ok(())
}
