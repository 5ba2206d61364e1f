//! W4 of BENCHMARKS.md: replay every event of a store in position order, checksums verified,
//! after reopen with the page cache warm: the zero-copy `scan_all` and the owned `read_all`
//! iterator, next to the raw baseline of reading the same segment files' data sequentially
//! into memory. Two stores of 10M events at full size (set `ANNALS_BENCH_EVENTS`): the W5
//! data set, written one event per append (so one checksum per event), and one written in
//! appends of 1,000 events.

mod common;

use std::fs::File;
use std::io::Read;
use std::ops::ControlFlow;

use std::path::Path;

use annals::format::{peek_frame_header, SEGMENT_HEADER_LEN};
use annals::Store;
use common::{batched_store, bench_events, interleaved_store, segment_files};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn replay(c: &mut Criterion) {
    let events = bench_events();
    replay_store(
        c,
        "one event per append",
        &interleaved_store(events, events / 100),
    );
    replay_store(c, "1,000 events per append", &batched_store(events));
}

fn replay_store(c: &mut Criterion, name: &str, dir: &Path) {
    let store = Store::open(dir).expect("open");
    let events = store.next_position();
    // The raw baseline reads the bytes the events occupy in the segment files, in order (the
    // rest of each file is preallocated zeros).
    let files = segment_files(dir);
    let data_bytes: u64 = files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).expect("read segment");
            let mut end = SEGMENT_HEADER_LEN;
            while let Some(h) = bytes.get(end..).and_then(peek_frame_header) {
                end += h.len as usize;
            }
            end as u64
        })
        .sum();
    eprintln!(
        "W4 store ({name}): {events} events, {data_bytes} bytes in {} segment files",
        files.len()
    );

    let mut group = c.benchmark_group(format!("replay, {name}"));
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
