//! The markdown report.

use std::fmt::Write;
use std::time::Duration;

use crate::engine::Peer;
use crate::workloads::{Row, Sizes, BATCH};

/// Raw-disk baselines measured in the same run.
pub struct Baselines {
    /// Latencies of write+fdatasync of one W1 frame, one W2 event (256 B), one W3 frame.
    pub w1: Vec<Duration>,
    pub w2: Vec<Duration>,
    pub w3: Vec<Duration>,
    /// Bytes and time of reading annals' W4 segment files.
    pub read: Option<(u64, Duration)>,
    pub events: u64,
}

fn median(samples: &[Duration]) -> Duration {
    let mut s = samples.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied().unwrap_or_default()
}

fn us(d: Option<Duration>) -> String {
    d.map_or_else(
        || "–".into(),
        |d| format!("{:.0} µs", d.as_secs_f64() * 1e6),
    )
}

/// Raw events/s for a workload, if there is a baseline for it.
fn raw_rate(b: &Baselines, workload: &str) -> Option<f64> {
    let per_op = |s: &[Duration], events: f64| events / median(s).as_secs_f64().max(1e-9);
    match &workload[..2] {
        "W1" => Some(per_op(&b.w1, 1.0)),
        "W2" => Some(per_op(&b.w2, 1.0)),
        "W3" => Some(per_op(&b.w3, BATCH as f64)),
        "W4" => b
            .read
            .map(|(_, t)| b.events as f64 / t.as_secs_f64().max(1e-9)),
        _ => None,
    }
}

pub fn markdown(rows: &[Row], b: &Baselines, peers: &[Peer], sizes: Sizes) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Sizes: {sizes:?}\n");
    let _ = writeln!(
        out,
        "| workload | engine | events/s | p50 | p99 | annals vs engine | % of raw disk |\n|---|---|---|---|---|---|---|"
    );
    for row in rows {
        if let Some(why) = row.unsupported {
            let _ = writeln!(
                out,
                "| {} | {} | not supported: {why} | | | | |",
                row.workload, row.engine
            );
            continue;
        }
        let annals = rows
            .iter()
            .find(|r| r.workload == row.workload && r.engine == "annals");
        let ratio = match annals {
            Some(a) if row.workload.starts_with("W5") => {
                match (a.percentile(50), row.percentile(50)) {
                    (Some(x), Some(y)) => format!(
                        "{:.2}x faster (p50)",
                        y.as_secs_f64() / x.as_secs_f64().max(1e-12)
                    ),
                    _ => "–".into(),
                }
            }
            Some(a) => format!(
                "{:.2}x",
                a.events_per_sec() / row.events_per_sec().max(1e-9)
            ),
            None => "–".into(),
        };
        let raw = raw_rate(b, row.workload).map_or_else(
            || "–".into(),
            |r| format!("{:.0}%", 100.0 * row.events_per_sec() / r),
        );
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} |",
            row.workload,
            row.engine,
            row.events_per_sec(),
            us(row.percentile(50)),
            us(row.percentile(99)),
            ratio,
            raw
        );
    }
    let _ = writeln!(out, "\nRaw disk in the same run: write+fdatasync p50 {} (W1 frame), {} (256 B), {} (W3 frame of 1,000 events).",
        us(Some(median(&b.w1))), us(Some(median(&b.w2))), us(Some(median(&b.w3))));
    if let Some((bytes, t)) = b.read {
        let _ = writeln!(out, "Raw sequential read of annals' W4 segment files: {bytes} bytes in {t:.2?} ({:.2} GB/s).", bytes as f64 / t.as_secs_f64() / 1e9);
    }
    let _ = writeln!(
        out,
        "\nEngines and settings (a commit is on stable storage before it returns, for all):\n"
    );
    for p in peers {
        let _ = writeln!(out, "- **{}**: {}", p.name, p.settings);
    }
    out
}
