//! Read-only opening beside a writer, online backup while appends go on, and `verify` listing
//! every damage of a store.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use annals::{EventData, ExpectedVersion, Options, Store};
use common::{
    assert_event, event, frames, overwrite, read_everything, segment_files, small_segments,
};

/// Every file under `dir` with its bytes.
fn snapshot_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(snapshot_files(&path));
        } else {
            files.insert(path.clone(), std::fs::read(&path).expect("read"));
        }
    }
    files
}

/// The store a crash left in `dir/copy` after `events` appends to stream "s" with `options`,
/// a write torn by the crash after its data (half a frame of garbage): the copy, its tail
/// segment, and the offset where the data ends.
fn torn_crash_copy(dir: &Path, options: Options, events: u64) -> (PathBuf, PathBuf, usize) {
    let (live, copy) = (dir.join("live"), dir.join("copy"));
    let store = Store::open_with(&live, options).expect("open");
    append_n(&store, "s", 0, events);
    common::crash_copy(&live, &copy);
    drop(store);
    let tail = segment_files(&copy).pop().expect("tail");
    let end = frames(&tail)
        .last()
        .map(|f| f.offset + f.len)
        .expect("frames");
    overwrite(&tail, end, &[0x5a; 30]);
    (copy, tail, end)
}

fn append_n(store: &Store, stream: &str, from: u64, to: u64) {
    for n in from..to {
        store
            .append(stream, ExpectedVersion::Any, [event(stream, n)])
            .expect("append");
    }
}

#[test]
fn read_only_opens_beside_a_writer_sees_what_was_written_and_refuses_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = Store::open_with(dir.path(), small_segments()).expect("open");
    append_n(&writer, "s", 0, 300);
    assert!(segment_files(dir.path()).len() > 2, "spans segments");
    assert!(matches!(
        Store::open(dir.path()),
        Err(annals::Error::Locked { .. })
    ));

    let reader = Store::open_read_only(dir.path()).expect("read-only beside the writer");
    assert!(reader.is_read_only());
    assert_eq!(reader.next_position(), 300);
    for (v, ev) in reader.read_stream("s", 0).enumerate() {
        assert_event(&ev.expect("read"), "s", v as u64, v as u64, v as u64);
    }
    let refused = reader.append("s", ExpectedVersion::Any, [event("s", 300)]);
    assert!(
        matches!(refused, Err(annals::Error::ReadOnly { .. })),
        "{refused:?}"
    );

    // The reader keeps its view; a new read-only opening sees the later appends.
    append_n(&writer, "s", 300, 320);
    assert_eq!(reader.next_position(), 300);
    assert_eq!(read_everything(&reader).len(), 300);
    let again = Store::open_read_only(dir.path()).expect("reopen read-only");
    assert_eq!(again.next_position(), 320);
    assert_eq!(again.stream_version("s"), Some(319));
}

#[test]
fn read_only_never_writes_not_even_to_cut_a_torn_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (copy, _, end) = torn_crash_copy(dir.path(), small_segments(), 50);
    let before = snapshot_files(&copy);

    let reader = Store::open_read_only(&copy).expect("open read-only");
    let report = reader.open_report();
    assert_eq!(report.cut, None);
    let unread = report
        .unread_tail
        .as_ref()
        .expect("the torn write is reported");
    assert_eq!(unread.offset, end as u64);
    assert_eq!(read_everything(&reader).len(), 50);
    drop(reader);
    assert_eq!(snapshot_files(&copy), before, "read-only changed files");

    // A writable opening then judges and cuts it.
    let store = Store::open(&copy).expect("open");
    assert_eq!(
        store.open_report().cut.as_ref().map(|c| c.offset),
        Some(end as u64)
    );
}

#[test]
fn read_only_refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = Store::open_read_only(dir.path().join("missing"));
    assert!(
        matches!(missing, Err(annals::Error::Io { .. })),
        "{missing:?}"
    );
    assert!(
        !dir.path().join("missing").exists(),
        "read-only created the directory"
    );
    let empty = Store::open_read_only(dir.path());
    assert!(
        matches!(&empty, Err(annals::Error::InvalidInput(m)) if m.contains("not an annals store")),
        "{empty:?}"
    );
}

#[test]
fn backup_while_a_writer_appends_holds_exactly_the_events_below_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path().join("live"), small_segments()).expect("open");
    append_n(&store, "a", 0, 200);
    store.save_checkpoint("projector", 120).expect("checkpoint");
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                store
                    .append("b", ExpectedVersion::Any, [event("b", n)])
                    .expect("append during backup");
                n += 1;
            }
        });
        // Let the writer get going, then back up while it appends.
        while store.stream_version("b").is_none_or(|v| v < 20) {
            std::thread::yield_now();
        }
        let mut calls = Vec::new();
        let report = store
            .backup_with_progress(dir.path().join("copy"), |done, total| {
                calls.push((done, total))
            })
            .expect("backup");
        stop.store(true, Ordering::Relaxed);
        assert_eq!(
            calls.last().map(|c| c.0),
            Some(report.position),
            "{calls:?}"
        );
        report
    });
    assert!(report.position >= 220);
    assert_eq!(report.checkpoints, 1);
    assert!(report.side_files > 0, "{report:?}");
    let all = read_everything(&store);
    assert!(
        all.len() as u64 > report.position,
        "the writer went on after the backup"
    );

    let copy = Store::open(dir.path().join("copy")).expect("open the copy");
    assert_eq!(copy.open_report().cut, None);
    assert!(
        copy.open_report().rebuilt_indexes.is_empty(),
        "{:?}",
        copy.open_report()
    );
    let copied = read_everything(&copy);
    assert_eq!(copied.len() as u64, report.position);
    for (a, b) in copied.iter().zip(&all) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }
    assert_eq!(copy.checkpoint("projector").expect("checkpoint"), Some(120));
    assert!(annals::verify(dir.path().join("copy"))
        .expect("verify")
        .is_sound());
}

#[test]
fn backup_refuses_a_non_empty_destination_and_a_damaged_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("live");
    let store = Store::open_with(&live, small_segments()).expect("open");
    append_n(&store, "s", 0, 100);
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).expect("mkdir");
    std::fs::write(taken.join("keep"), b"x").expect("write");
    let refused = store.backup(&taken);
    assert!(
        matches!(&refused, Err(annals::Error::InvalidInput(m)) if m.contains("not empty")),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(taken.join("keep")).expect("kept"), b"x");

    let first = segment_files(&live).remove(0);
    let frame = frames(&first)[3];
    overwrite(&first, frame.offset + frame.len - 5, &[0xff]);
    match store.backup(dir.path().join("copy")) {
        Err(annals::Error::Corrupt { file, offset, .. }) => {
            assert_eq!(file, first);
            assert_eq!(offset, frame.offset as u64);
        }
        other => panic!("backup of a damaged store: {other:?}"),
    }
    assert!(
        !dir.path().join("copy").exists(),
        "an unfinished backup was left"
    );
}

#[test]
fn verify_lists_every_damage_with_file_offset_and_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    for n in 0..300 {
        let stream = if n % 2 == 0 { "even" } else { "odd" };
        store
            .append(
                stream,
                ExpectedVersion::Any,
                [EventData::new("T", vec![n as u8; 300])],
            )
            .expect("append");
    }
    store.save_checkpoint("c", 5).expect("checkpoint");
    let sound = annals::verify(dir.path()).expect("verify");
    assert!(sound.is_sound(), "{:?}", sound.damages);
    assert_eq!(sound.events, 300);
    drop(store);

    let segments = segment_files(dir.path());
    let (first, second) = (&segments[0], &segments[1]);
    let f1 = frames(first)[2];
    let f2 = frames(first)[7];
    let f3 = frames(second)[1];
    // Payload bytes near each frame's end: the headers survive.
    for (file, f) in [(first, f1), (first, f2), (second, f3)] {
        overwrite(file, f.offset + f.len - 10, &[0xee]);
    }
    let side = first.with_extension("idx");
    assert!(side.exists());
    overwrite(&side, 70, &[0x13]);

    let report = annals::verify(dir.path()).expect("verify");
    assert!(!report.is_sound());
    let found: Vec<(PathBuf, u64)> = report
        .damages
        .iter()
        .map(|d| (d.file.clone(), d.offset))
        .collect();
    for (file, f) in [(first, f1), (first, f2), (second, f3)] {
        assert!(
            found.contains(&(file.clone(), f.offset as u64)),
            "{:?} missing in {found:?}",
            (file, f.offset)
        );
    }
    let frame_damage = report
        .damages
        .iter()
        .find(|d| d.offset == f1.offset as u64)
        .expect("f1");
    assert_eq!(frame_damage.stream.as_deref(), Some("even"));
    assert!(
        report.damages.iter().any(|d| d.file == side),
        "{:?}",
        report.damages
    );
    assert_eq!(
        report.events, 297,
        "every intact frame after the damage was still read"
    );
}

#[test]
fn verify_tells_a_torn_tail_from_damage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (copy, tail, end) = torn_crash_copy(dir.path(), Options::default(), 20);
    let report = annals::verify(&copy).expect("verify");
    assert!(report.is_sound(), "{:?}", report.damages);
    assert_eq!(
        report.torn_tail.as_ref().map(|t| t.offset),
        Some(end as u64)
    );

    // Damage in the middle of the tail, with intact frames after it, is damage.
    let middle = frames(&tail)[5];
    overwrite(&tail, middle.offset + middle.len - 3, &[0x01]);
    let report = annals::verify(&copy).expect("verify");
    assert!(report.torn_tail.is_none());
    // The damage, then the garbage after the data (no longer a tear to cut).
    assert_eq!(report.damages.len(), 2, "{:?}", report.damages);
    assert_eq!(report.damages[0].offset, middle.offset as u64);
    assert_eq!(report.damages[1].offset, end as u64);
    assert_eq!(report.damages[0].stream.as_deref(), Some("s"));
}

#[test]
fn backup_fills_an_empty_directory_in_place_replaces_an_interrupted_one_and_caps_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path().join("live"), small_segments()).expect("open");
    append_n(&store, "s", 0, 100);
    // A consumer whose checkpoint is ahead of what the copy holds (saved while it ran).
    store
        .save_checkpoint("ahead", 1_000_000)
        .expect("checkpoint");

    let mounted = dir.path().join("mounted");
    std::fs::create_dir(&mounted).expect("mkdir");
    let report = store
        .backup(&mounted)
        .expect("backup into an empty directory");
    assert_eq!(report.position, 100);
    assert!(!mounted.join("BACKUP-IN-PROGRESS").exists());
    let copy = Store::open(&mounted).expect("open");
    assert_eq!(copy.checkpoint("ahead").expect("checkpoint"), Some(100));
    drop(copy);

    // What a crashed backup left: its partial directory, marked, is replaced.
    let dest = dir.path().join("copy");
    let partial = dir.path().join("copy.partial");
    std::fs::create_dir(&partial).expect("mkdir");
    std::fs::write(partial.join("BACKUP-IN-PROGRESS"), b"").expect("mark");
    std::fs::write(partial.join("00000000000000000000.log"), b"half").expect("junk");
    store.backup(&dest).expect("backup over an interrupted one");
    assert!(!partial.exists());
    assert_eq!(
        read_everything(&Store::open(&dest).expect("open")).len(),
        100
    );

    // An unmarked directory in the way is not annals' to remove.
    let other = dir.path().join("other.partial");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("mine"), b"x").expect("write");
    assert!(store.backup(dir.path().join("other")).is_err());
    assert_eq!(std::fs::read(other.join("mine")).expect("kept"), b"x");
}

#[test]
fn verify_and_read_only_opening_beside_a_live_writer_find_a_sound_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_with(dir.path(), small_segments()).expect("open");
    append_n(&store, "s", 0, 10);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 10;
            while !stop.load(Ordering::Relaxed) {
                append_n(&store, "s", n, n + 1);
                n += 1;
            }
        });
        // The writer stops when this scope ends, even by a failed assertion.
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        // At least 30 rounds, and until the writer has rolled segments a few times.
        let mut round = 0;
        while round < 30 || (segment_files(dir.path()).len() < 4 && round < 5_000) {
            round += 1;
            let report = annals::verify(dir.path()).expect("verify");
            assert!(report.is_sound(), "{:?}", report.damages);
            let reader = Store::open_read_only(dir.path()).expect("read-only");
            let events = read_everything(&reader);
            assert_eq!(events.len() as u64, reader.next_position());
            assert!(events
                .iter()
                .enumerate()
                .all(|(i, ev)| ev.version() == i as u64));
        }
    });
    assert!(
        segment_files(dir.path()).len() > 2,
        "the writer rolled segments meanwhile"
    );
}

#[test]
fn refresh_brings_a_read_only_handle_and_its_subscriptions_up_to_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writer = Store::open_with(dir.path(), small_segments()).expect("open");
    append_n(&writer, "s", 0, 10);
    let reader = Store::open_read_only(dir.path()).expect("read-only");
    let mut sub = reader.subscribe_all(0);
    for p in 0..10 {
        let ev = sub
            .next_timeout(Duration::from_secs(5))
            .expect("sub")
            .expect("event");
        assert_eq!(ev.position(), p);
    }
    assert!(sub
        .next_timeout(Duration::from_millis(50))
        .expect("sub")
        .is_none());

    // Across segment rolls.
    append_n(&writer, "s", 10, 300);
    let waiter = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(ev) = sub.next_timeout(Duration::from_secs(10)).expect("sub") {
            got.push(ev.position());
            if got.len() == 290 {
                break;
            }
        }
        got
    });
    assert_eq!(reader.refresh().expect("refresh"), 300);
    assert_eq!(
        waiter.join().expect("subscriber"),
        (10..300).collect::<Vec<_>>()
    );
    assert_eq!(reader.stream_version("s"), Some(299));
    for (v, ev) in reader.read_stream("s", 0).enumerate() {
        assert_event(&ev.expect("read"), "s", v as u64, v as u64, v as u64);
    }
    // Retention set by the writer shows after a refresh too.
    writer
        .delete_stream("s", ExpectedVersion::Any)
        .expect("delete");
    reader.refresh().expect("refresh");
    assert_eq!(reader.read_stream("s", 0).count(), 0);
    assert_eq!(writer.refresh().expect("writable refresh"), 300);
}

const BACKUP_CHILD: &str = "ANNALS_TEST_BACKUP_CHILD";

/// Killed with SIGKILL in the middle of a backup, at several moments: the destination never
/// holds a half copy (only the marked `.partial` directory), and a backup run again
/// completes it.
#[test]
fn a_backup_killed_midway_leaves_no_destination_and_runs_again() {
    if let Ok(dirs) = std::env::var(BACKUP_CHILD) {
        // The child: a slow backup (it pauses after each segment), saying when it goes on.
        let (live, dest) = dirs.split_once('|').expect("two directories");
        let store = Store::open_read_only(live).expect("open");
        store
            .backup_with_progress(dest, |done, _| {
                println!("copied {done}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            })
            .expect("backup");
        println!("done");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let live = dir.path().join("live");
    let store = Store::open_with(&live, small_segments()).expect("open");
    append_n(&store, "s", 0, 1500);
    assert!(
        segment_files(&live).len() > 10,
        "{}",
        segment_files(&live).len()
    );
    for (round, after) in [1usize, 4, 9].into_iter().enumerate() {
        let dest = dir.path().join(format!("copy-{round}"));
        let value = format!("{}|{}", live.display(), dest.display());
        let (mut child, lines) = common::child::spawn_self(
            "a_backup_killed_midway_leaves_no_destination_and_runs_again",
            BACKUP_CHILD,
            &value,
        );
        let mut seen = 0;
        while seen < after {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("child output");
            if line.starts_with("copied") {
                seen += 1;
            }
        }
        child.kill_9();
        assert!(!dest.exists(), "a killed backup left {dest:?}");
        let partial = dest.with_file_name(format!("copy-{round}.partial"));
        assert!(
            partial.join("BACKUP-IN-PROGRESS").exists(),
            "the partial copy is marked"
        );
        let report = store.backup(&dest).expect("backup again");
        assert!(!partial.exists());
        let copy = Store::open(&dest).expect("open the copy");
        assert_eq!(copy.next_position(), report.position);
        assert_eq!(read_everything(&copy).len(), 1500);
    }
}
