//! Side-by-side benchmark of annals against SQLite, redb, fjall and okaywal on the workloads
//! W1–W5 (defined in the README's Performance section), engines interleaved in one run, next
//! to raw-disk baselines.
//! Prints a markdown table.
//!
//! ```text
//! cargo run --release -- [--quick] [--events N] [--dir DIR]
//! ```
//!
//! `--quick` is the CI smoke run (10k events, about a minute). The full run uses 10M events
//! for W4/W5 unless `--events` says otherwise. Data lives in a temporary directory under
//! `--dir` (default: the current directory), on the local disk.

mod data;
mod engine;
mod engines;
mod raw;
mod report;
mod workloads;

use std::path::PathBuf;

use workloads::{Row, Sizes};

fn main() {
    if let Err(e) = run() {
        eprintln!("annals-compare: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(unknown) = args
        .iter()
        .find(|a| a.starts_with("--") && !["--quick", "--events", "--dir"].contains(&a.as_str()))
    {
        return Err(format!(
            "unknown option {unknown}; usage: annals-compare [--quick] [--events N] [--dir DIR]"
        ));
    }
    let quick = args.iter().any(|a| a == "--quick");
    let events = match value("--events") {
        Some(v) => v
            .parse()
            .map_err(|_| format!("--events {v}: not a number"))?,
        None if quick => 10_000,
        None => 10_000_000,
    };
    let sizes = if quick {
        Sizes {
            w1_appends: 200,
            w2_per_thread: 5,
            w3_batches: 5,
            events,
            stream_reads: 200,
        }
    } else {
        Sizes {
            w1_appends: 3_000,
            w2_per_thread: 100,
            w3_batches: 100,
            events,
            stream_reads: 2_000,
        }
    };
    let base = value("--dir").map_or_else(|| PathBuf::from("."), PathBuf::from);
    let root = tempfile::tempdir_in(&base)
        .map_err(|e| format!("temporary directory in {}: {e}", base.display()))?;
    let peers = engines::all();
    let mut rows: Vec<Row> = Vec::new();
    let fresh = |name: &str, workload: &str| -> Result<PathBuf, String> {
        let dir = root.path().join(format!("{workload}-{name}"));
        std::fs::create_dir_all(&dir).map_err(engine::err)?;
        Ok(dir)
    };
    eprintln!("sizes: {sizes:?}");

    let raw_dir = fresh("raw", "raw")?;
    let frame_1 = 32 + annals::format::record_len(9, 16, 0, 200, true);
    let raw_w1 = raw::write_sync(&raw_dir, frame_1, sizes.w1_appends)?;
    for peer in &peers {
        eprintln!("W1 {}", peer.name);
        rows.push(workloads::w1(peer, &fresh(peer.name, "w1")?, sizes)?);
    }
    let raw_w2 = raw::write_sync(&raw_dir, 256, sizes.w1_appends)?;
    for peer in &peers {
        eprintln!("W2 {}", peer.name);
        rows.push(workloads::w2(peer, &fresh(peer.name, "w2")?, sizes)?);
    }
    let frame_1000 = 32 + 1000 * annals::format::record_len(9, 16, 0, 200, true);
    let raw_w3 = raw::write_sync(&raw_dir, frame_1000, sizes.w3_batches)?;
    for peer in &peers {
        eprintln!("W3 {}", peer.name);
        rows.push(workloads::w3(peer, &fresh(peer.name, "w3")?, sizes)?);
    }
    let mut raw_read = None;
    for peer in &peers {
        eprintln!("W4/W5 {}", peer.name);
        let dir = fresh(peer.name, "w4")?;
        let (w4, w5) = workloads::w4_w5(peer, &dir, sizes)?;
        if peer.name == "annals" {
            raw_read = Some(raw::read_segments(&dir)?);
        }
        rows.push(w4);
        rows.push(w5);
    }
    let baselines = report::Baselines {
        w1: raw_w1,
        w2: raw_w2,
        w3: raw_w3,
        read: raw_read,
        events: sizes.events,
    };
    print!("{}", report::markdown(&rows, &baselines, &peers, sizes));
    Ok(())
}
