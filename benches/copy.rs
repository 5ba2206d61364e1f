//! `copy_to` throughput (events/s) with an identity transform, next to the same work done by
//! hand in the same run: `read_all` of the source plus `append_many` of the same events
//! (1,000 per call, `Buffered`, synced at the end) into an empty store. Median of 3 each.
//!
//! `cargo bench --bench copy` (`ANNALS_BENCH_EVENTS=N`, default 1M).

mod common;

use std::time::Instant;

use annals::{Durability, EventData, ExpectedVersion, Options, RecordedEvent, Store};
use common::{bench_events, interleaved_store, median};

fn identity(ev: &RecordedEvent) -> Vec<EventData> {
    vec![EventData::new(ev.event_type(), ev.payload().to_vec()).metadata(ev.metadata().to_vec())]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events = bench_events();
    let source = interleaved_store(events, events / 10);
    let src = Store::open(&source).expect("open");
    let scratch = tempfile::tempdir_in(source.parent().expect("parent")).expect("scratch");
    let (mut copies, mut by_hand) = (Vec::new(), Vec::new());
    for run in 0..3 {
        let t = Instant::now();
        let report = src
            .copy_to(scratch.path().join(format!("copy-{run}")), identity)
            .expect("copy_to");
        copies.push(t.elapsed());
        assert_eq!(report.events_out, events);

        let t = Instant::now();
        let options = Options::default().durability(Durability::Buffered);
        let dst = Store::open_with(scratch.path().join(format!("hand-{run}")), options)
            .expect("open destination");
        let mut batch = Vec::with_capacity(1_000);
        for ev in src.read_all(0) {
            let ev = ev.expect("read_all");
            let mut out = identity(&ev).remove(0).timestamp(ev.timestamp());
            if let Some(id) = ev.id() {
                out = out.id(id);
            }
            batch.push((ev.stream().to_string(), ExpectedVersion::Any, [out]));
            if batch.len() == 1_000 {
                for r in dst.append_many(batch.drain(..)).expect("append_many") {
                    r.expect("append");
                }
            }
        }
        for r in dst.append_many(batch.drain(..)).expect("append_many") {
            r.expect("append");
        }
        dst.sync().expect("sync");
        by_hand.push(t.elapsed());
        let _ = std::fs::remove_dir_all(scratch.path().join(format!("copy-{run}")));
        let _ = std::fs::remove_dir_all(scratch.path().join(format!("hand-{run}")));
    }
    let (c, h) = (median(copies), median(by_hand));
    println!(
        "copy_to of {events} events (identity transform): {c:.2?} ({:.0} events/s) vs read_all \
         + append_many by hand {h:.2?} ({:.0} events/s): {:.0}%",
        events as f64 / c.as_secs_f64(),
        events as f64 / h.as_secs_f64(),
        100.0 * h.as_secs_f64() / c.as_secs_f64()
    );
}
