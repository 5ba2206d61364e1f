//! W4 of BENCHMARKS.md: replay every event of a store in position order, checksums verified,
//! after reopen with the page cache warm: the zero-copy `scan_all` and the owned `read_all`
//! iterator, next to the raw baseline of reading the same segment files' data sequentially
//! into memory. The store is the W5 data set (10M events at full size; set
//! `ANNALS_BENCH_EVENTS`).

mod common;

use std::fs::File;
use std::io::Read;
use std::ops::ControlFlow;

use annals::format::{record_len, FRAME_HEADER_LEN};
use annals::Store;
use common::{bench_events, interleaved_store};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn replay(c: &mut Criterion) {
    let events = bench_events();
    let dir = interleaved_store(events, events / 100);
    let store = Store::open(&dir).expect("open");
    let events = store.next_position();
    // The raw baseline reads the bytes the events occupy in the segment files, in order (the
    // rest of each file is preallocated zeros). The data set has one event per frame.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    let data_bytes: u64 = {
        let mut total = 0;
        store
            .scan_all(0, |ev| {
                let record = record_len(
                    ev.stream().len(),
                    ev.event_type().len(),
                    ev.metadata().len(),
                    ev.payload().len(),
                    ev.id().is_some(),
                );
                total += (FRAME_HEADER_LEN + record) as u64;
                ControlFlow::Continue(())
            })
            .expect("scan");
        total
    };
    eprintln!("W4 store: {events} events in {} segment files", files.len());

    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(events));
    group.sample_size(10);
    let mut buf = vec![0u8; 64 << 20];
    group.bench_function("raw sequential read", |b| {
        b.iter(|| {
            let mut left = data_bytes;
            for path in &files {
                let mut f = File::open(path).expect("open");
                while left > 0 {
                    let want = buf.len().min(left as usize);
                    let n = f.read(&mut buf[..want]).expect("read");
                    if n == 0 {
                        break;
                    }
                    left -= n as u64;
                }
            }
            left
        })
    });
    group.bench_function("annals scan_all (zero-copy)", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            let seen = store
                .scan_all(0, |ev| {
                    bytes += ev.payload().len();
                    ControlFlow::Continue(())
                })
                .expect("scan");
            assert_eq!(seen, events);
            bytes
        })
    });
    group.bench_function("annals read_all (owned)", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            for ev in store.read_all(0) {
                bytes += ev.expect("event").payload().len();
            }
            bytes
        })
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
