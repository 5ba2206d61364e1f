//! `copy_to`: a passive migration through a transform, resumable: run twice with appends in
//! between it copies each event once; a transform that fails stops it at that position; a
//! crash between a batch and its recorded progress is finished without duplicates.

mod common;

use annals::{Error, EventData, ExpectedVersion, RecordedEvent, Store};
use common::{event, small_segments};

fn fill(store: &Store, n: u64) {
    let start = store.next_position();
    for i in start..start + n {
        let stream = format!("user-{}", i % 5);
        store
            .append(&stream, ExpectedVersion::Any, [event(&stream, i)])
            .expect("append");
    }
}

/// Type0 events go, Type1 events double, the others get a revision.
fn transform(ev: &RecordedEvent) -> Vec<EventData> {
    let revised = |ev: &RecordedEvent| {
        let mut p = ev.payload().to_vec();
        p.extend_from_slice(b"+rev");
        EventData::new(ev.event_type(), p).metadata(ev.metadata().to_vec())
    };
    match ev.event_type() {
        "Type0" => vec![],
        "Type1" => vec![revised(ev), EventData::new("Type1Echo", vec![1])],
        _ => vec![revised(ev)],
    }
}

/// The destination holds exactly the transform of every source event, each stream in order
/// with dense versions, ids and timestamps kept.
fn check_copy(src: &Store, dst: &Store) {
    let mut expected: Vec<(String, String, Vec<u8>, u64)> = Vec::new();
    for ev in src.read_all(0).map(|e| e.expect("source")) {
        for out in transform(&ev) {
            let payload = out.payload().to_vec();
            expected.push((
                ev.stream().into(),
                out.event_type().into(),
                payload,
                ev.timestamp(),
            ));
        }
    }
    let got: Vec<RecordedEvent> = dst.read_all(0).map(|e| e.expect("destination")).collect();
    let got_rows: Vec<_> = got
        .iter()
        .map(|e| {
            (
                e.stream().into(),
                e.event_type().into(),
                e.payload().to_vec(),
                e.timestamp(),
            )
        })
        .collect();
    assert_eq!(got_rows, expected);
    for s in 0..5 {
        let stream = format!("user-{s}");
        let versions: Vec<u64> = dst
            .read_stream(&stream, 0)
            .map(|e| e.expect("stream").version())
            .collect();
        assert_eq!(versions, (0..versions.len() as u64).collect::<Vec<_>>());
    }
    // The first event out of each event in keeps its id.
    let with_ids = got.iter().filter(|e| e.id().is_some()).count();
    let firsts = src
        .read_all(0)
        .filter(|e| !transform(e.as_ref().expect("source")).is_empty())
        .count();
    assert_eq!(with_ids, firsts);
}

#[test]
fn copying_twice_with_appends_between_copies_each_event_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let dst_dir = out.path().join("v2");
    let src = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&src, 2_500);
    let first = src.copy_to(&dst_dir, transform).expect("copy");
    assert_eq!((first.from, first.to, first.events_in), (0, 2_500, 2_500));
    assert_eq!(first.by_type["Type0"], (500, 0));
    assert_eq!(first.by_type["Type1"], (500, 1_000));
    assert_eq!(first.by_stream["user-2"].0, 500);
    fill(&src, 700);
    let second = src.copy_to(&dst_dir, transform).expect("copy again");
    assert_eq!(
        (second.from, second.to, second.events_in),
        (2_500, 3_200, 700)
    );
    let third = src.copy_to(&dst_dir, transform).expect("nothing new");
    assert_eq!((third.events_in, third.events_out), (0, 0));
    let dst = Store::open(&dst_dir).expect("open destination");
    assert_eq!(dst.next_position(), first.events_out + second.events_out);
    check_copy(&src, &dst);
}

#[test]
fn a_failing_transform_stops_the_copy_at_its_position_and_a_rerun_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let dst_dir = out.path().join("v2");
    let src = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&src, 2_000);
    let failed = src.try_copy_to(&dst_dir, |ev| match ev.position() {
        1_234 => Err("cannot read this one".to_string()),
        _ => Ok(transform(ev)),
    });
    match failed {
        Err(Error::CopyStopped { position, reason }) => {
            assert_eq!(position, 1_234);
            assert!(reason.contains("cannot read"));
        }
        other => panic!("{other:?}"),
    }
    let rest = src.copy_to(&dst_dir, transform).expect("copy the rest");
    assert_eq!((rest.from, rest.to), (1_234, 2_000));
    let dst = Store::open(&dst_dir).expect("open destination");
    check_copy(&src, &dst);
}

#[test]
fn a_crash_between_a_batch_and_its_progress_is_finished_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let dst_dir = out.path().join("v2");
    let src = Store::open_with(dir.path(), small_segments()).expect("open");
    fill(&src, 1_500);
    src.copy_to(&dst_dir, transform).expect("copy");
    let recorded = std::fs::read(dst_dir.join("COPY-PROGRESS")).expect("progress");
    fill(&src, 2_600);
    src.copy_to(&dst_dir, transform).expect("copy again");
    // As if the second run had written its batches and crashed before recording them.
    std::fs::write(dst_dir.join("COPY-PROGRESS"), &recorded).expect("rewind progress");
    let rerun = src.copy_to(&dst_dir, transform).expect("rerun");
    assert_eq!(rerun.from, 1_500);
    let dst = Store::open(&dst_dir).expect("open destination");
    check_copy(&src, &dst);
    drop(dst);
    // A different transform cannot resume it: the check says so, nothing is written twice.
    std::fs::write(dst_dir.join("COPY-PROGRESS"), &recorded).expect("rewind progress");
    let other = src.copy_to(&dst_dir, |ev| {
        vec![EventData::new("Else", ev.payload().to_vec())]
    });
    assert!(matches!(other, Err(Error::CopyStopped { .. })), "{other:?}");
}

const CHILD_ENV: &str = "ANNALS_COPY_CHILD";
const KILL_TEST: &str = "a_copy_killed_at_random_moments_finishes_without_loss_or_duplicates";

/// The child: copies the source (read-only, beside nobody) into the destination, slowly.
fn copy_child(arg: &str) {
    let (src, dst) = arg.split_once('|').expect("child argument");
    let store = Store::open_read_only(src).expect("child open");
    println!("copying");
    store
        .copy_to(dst, |ev| {
            if ev.position() % 200 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            transform(ev)
        })
        .expect("copy");
    println!("copied");
}

#[test]
fn a_copy_killed_at_random_moments_finishes_without_loss_or_duplicates() {
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        copy_child(&arg);
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = tempfile::tempdir().expect("tempdir");
    let dst_dir = out.path().join("v2");
    {
        let src = Store::open_with(dir.path(), small_segments()).expect("open");
        fill(&src, 20_000);
    }
    let mut rng = common::Rng::from_clock(KILL_TEST);
    let arg = format!("{}|{}", dir.path().display(), dst_dir.display());
    let mut finished_early = 0;
    for _ in 0..5 {
        let (mut child, lines) = common::child::spawn_self(KILL_TEST, CHILD_ENV, &arg);
        // The test harness prints its own lines first.
        loop {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the child starts");
            if line.contains("copying") {
                break;
            }
        }
        let wait = std::time::Duration::from_millis(20 + rng.below(150));
        if let Ok(line) = lines.recv_timeout(wait) {
            finished_early += usize::from(line.contains("copied"));
        }
        child.kill_9();
    }
    // A last run finishes the job: the destination is the transform of every event, once.
    let src = Store::open_read_only(dir.path()).expect("open");
    src.copy_to(&dst_dir, transform).expect("finish the copy");
    let dst = Store::open(&dst_dir).expect("open destination");
    check_copy(&src, &dst);
    eprintln!("{KILL_TEST}: 5 kills, {finished_early} of them after the copy had finished");
}
