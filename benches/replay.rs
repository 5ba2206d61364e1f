//! Replaying a store in position order with checksums verified (W4 of BENCHMARKS.md, at a size
//! a bench run affords), next to the raw baseline: reading the same segment files sequentially
//! into memory. Page cache warm in both.

use std::io::Read;

use annals::{EventData, ExpectedVersion, Options, Store};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const EVENTS: u64 = 200_000;

fn replay(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = Options::default().segment_size(64 << 20);
    let store = Store::open_with(dir.path(), options.clone()).expect("open");
    let payload: Vec<u8> = (0..200u32).map(|i| (i * 7919 % 251) as u8).collect();
    for b in 0..EVENTS / 1000 {
        let events = (0..1000u64).map(|i| {
            EventData::new("QuestionAnswered", payload.clone()).id(u128::from(b * 1000 + i))
        });
        store
            .append(
                &format!("student-{}", b % 100),
                ExpectedVersion::Any,
                events,
            )
            .expect("append");
    }
    store.close().expect("close");
    let store = Store::open_with(dir.path(), options).expect("reopen");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();

    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(20);
    let mut buf = Vec::new();
    group.bench_function("raw sequential read", |b| {
        b.iter(|| {
            let mut total = 0;
            for f in &files {
                buf.clear();
                total += std::fs::File::open(f)
                    .and_then(|mut f| f.read_to_end(&mut buf))
                    .expect("read");
            }
            total
        })
    });
    group.bench_function("annals read_all", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for ev in store.read_all(0) {
                n += ev.expect("event").payload().len() as u64;
            }
            assert_eq!(n, EVENTS * 200);
        })
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
