//! Durable appends of one 200-byte event (W1 of BENCHMARKS.md, one thread), next to the raw
//! baseline: `write` + `fdatasync` of a frame's worth of bytes into a preallocated file.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use annals::{EventData, ExpectedVersion, Store};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn payload() -> Vec<u8> {
    (0..200u32).map(|i| (i * 7919 % 251) as u8).collect()
}

fn append_one(c: &mut Criterion) {
    let mut group = c.benchmark_group("append-1x1");
    group.throughput(Throughput::Elements(1));

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("raw");
    let file = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .expect("raw file");
    file.set_len(1 << 30).expect("preallocate");
    // Same size as one annals frame of this event: frame header, record header, id, names.
    let frame = vec![0x5Au8; 32 + 52 + 16 + "student-1".len() + "QuestionAnswered".len() + 200];
    let mut offset = 0u64;
    group.bench_function("raw write+fdatasync", |b| {
        b.iter(|| {
            file.write_all_at(&frame, offset).expect("write");
            file.sync_data().expect("fdatasync");
            offset += frame.len() as u64;
        })
    });

    let store = Store::open(dir.path().join("store")).expect("open");
    let payload = payload();
    let mut n = 0u128;
    group.bench_function("annals", |b| {
        b.iter(|| {
            n += 1;
            store
                .append(
                    "student-1",
                    ExpectedVersion::Any,
                    [EventData::new("QuestionAnswered", payload.clone()).id(n)],
                )
                .expect("append")
        })
    });
    group.finish();
}

criterion_group!(benches, append_one);
criterion_main!(benches);
