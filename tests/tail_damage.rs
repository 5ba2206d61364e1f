//! Damage in the tail segment is told apart from a write lost in a crash by what lies behind
//! it: an intact frame written after the damaged bytes were synced (its durable position says
//! so), or the end of the data a clean close recorded, means acknowledged data was damaged, and
//! opening refuses with `Error::Corrupt`; only bytes that no later frame proves synced may be
//! cut, and a cut is always reported. Under `Durability::Buffered`, pages written after the
//! last sync may be lost in any order, and the store opens with the synced prefix.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use annals::{Durability, Error, EventData, ExpectedVersion, Options, Store};
use common::*;
use proptest::prelude::*;

/// A tail big enough for every test here.
fn options() -> Options {
    Options::default().segment_size(4 << 20)
}

/// Appends `appends` appends of 1 to 3 events (`n`-th event: `event("s", n)`); returns the
/// number of events.
fn fill(store: &Store, appends: u64) -> u64 {
    let mut n = 0;
    for a in 0..appends {
        let count = 1 + a % 3;
        let events: Vec<EventData> = (n..n + count).map(|i| event("s", i)).collect();
        store.append("s", ExpectedVersion::Any, events).unwrap();
        n += count;
    }
    n
}

/// How a test store ends: closed cleanly, or as a crash leaves it (no clean-close record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Closed,
    Crashed,
}

/// A store in `dir` with `appends` appends, ended as asked. Returns its tail and event count.
fn store_with(dir: &Path, appends: u64, ending: Ending) -> (PathBuf, u64) {
    let live = tempfile::tempdir().unwrap();
    let at = match ending {
        Ending::Closed => dir,
        Ending::Crashed => live.path(),
    };
    let store = Store::open_with(at, options()).unwrap();
    let events = fill(&store, appends);
    if ending == Ending::Crashed {
        crash_copy(live.path(), dir);
    }
    store.close().unwrap();
    (segment_files(dir).pop().unwrap(), events)
}

fn expect_corrupt(dir: &Path, tail: &Path) -> u64 {
    match Store::open_with(dir, options()) {
        Err(Error::Corrupt {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, tail, "{reason}");
            offset
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(store) => panic!(
            "opened with {} events, cut {:?}: the damage went unnoticed",
            store.next_position(),
            store.open_report().cut
        ),
    }
}

#[test]
fn a_zeroed_page_with_intact_frames_behind_it_is_refused() {
    for ending in [Ending::Closed, Ending::Crashed] {
        let dir = tempfile::tempdir().unwrap();
        let (tail, _) = store_with(dir.path(), 3000, ending);
        let frames = frames(&tail);
        let middle = frames[frames.len() / 2].offset / 4096 * 4096;
        overwrite(&tail, middle, &[0; 4096]);
        let offset = expect_corrupt(dir.path(), &tail);
        let victim = frames.iter().rfind(|f| f.offset <= middle).unwrap();
        assert_eq!(offset, victim.offset as u64, "{ending:?}");
        // Nothing was cut: the intact frames behind the page are still there.
        let last = frames.last().unwrap();
        let bytes = std::fs::read(&tail).unwrap();
        assert!(annals::format::read_frame(&bytes[last.offset..]).is_ok());
    }
}

#[test]
fn a_zeroed_length_in_the_middle_of_the_tail_is_refused_not_read_as_the_end() {
    for ending in [Ending::Closed, Ending::Crashed] {
        let dir = tempfile::tempdir().unwrap();
        let (tail, _) = store_with(dir.path(), 400, ending);
        let frames = frames(&tail);
        let victim = frames[frames.len() / 2];
        overwrite(&tail, victim.offset, &[0; 4]);
        assert_eq!(expect_corrupt(dir.path(), &tail), victim.offset as u64);
    }
}

#[test]
fn a_zeroed_length_of_the_last_frame_after_a_crash_is_a_reported_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (tail, events) = store_with(dir.path(), 30, Ending::Crashed);
    let last = *frames(&tail).last().unwrap();
    overwrite(&tail, last.offset, &[0; 4]);
    let store = Store::open_with(dir.path(), options()).unwrap();
    let cut = store
        .open_report()
        .cut
        .clone()
        .expect("the cut is reported");
    assert_eq!(cut.offset, last.offset as u64);
    assert_eq!(store.next_position(), events - u64::from(last.count));
}

#[test]
fn a_zeroed_length_of_the_last_frame_after_a_clean_close_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (tail, _) = store_with(dir.path(), 30, Ending::Closed);
    let last = *frames(&tail).last().unwrap();
    overwrite(&tail, last.offset, &[0; 4]);
    assert_eq!(expect_corrupt(dir.path(), &tail), last.offset as u64);
}

/// Pristine stores for the property test: (dir, tail, events, frames), per ending.
fn pristine(ending: Ending) -> &'static (tempfile::TempDir, PathBuf, u64, Vec<FrameAt>) {
    static CLOSED: OnceLock<(tempfile::TempDir, PathBuf, u64, Vec<FrameAt>)> = OnceLock::new();
    static CRASHED: OnceLock<(tempfile::TempDir, PathBuf, u64, Vec<FrameAt>)> = OnceLock::new();
    let cell = match ending {
        Ending::Closed => &CLOSED,
        Ending::Crashed => &CRASHED,
    };
    cell.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (tail, events) = store_with(dir.path(), 120, ending);
        let frames = frames(&tail);
        (dir, tail, events, frames)
    })
}

/// Copies a pristine store, damages `len` bytes of its tail at `offset` (zeroed, or each byte
/// flipped), opens it. It must be refused, or cut only the last append (which, after a crash,
/// no later frame proves synced) and report the cut; never open shorter without a word.
fn damage_is_refused_or_reported(ending: Ending, offset: usize, len: usize, flip: bool) {
    let (src, _, events, frames) = pristine(ending);
    let dir = tempfile::tempdir().unwrap();
    crash_copy(src.path(), dir.path());
    let tail = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&tail).unwrap();
    for b in &mut bytes[offset..offset + len] {
        *b = if flip { !*b } else { 0 };
    }
    std::fs::write(&tail, &bytes).unwrap();
    let last = frames.last().unwrap();
    match Store::open_with(dir.path(), options()) {
        Err(Error::Corrupt { file, .. }) => assert_eq!(file, tail),
        Err(other) => panic!("unexpected error {other}"),
        Ok(store) => {
            let kept = read_everything(&store);
            for (n, ev) in (0u64..).zip(&kept) {
                assert_event(ev, "s", n, n, n);
            }
            let kept = kept.len() as u64;
            if kept < *events {
                let cut = store.open_report().cut.as_ref();
                assert!(
                    cut.is_some(),
                    "{} events lost without a report",
                    events - kept
                );
                assert_eq!(ending, Ending::Crashed, "a clean close's data was cut");
                assert_eq!(
                    kept, last.first_position,
                    "more than the last append was cut"
                );
                assert!(
                    offset + len > last.offset,
                    "damage before the last frame was cut"
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn small_damage_anywhere_in_a_synced_tail_is_refused_or_reported(
        at in 0.0f64..1.0,
        len in 1usize..=16,
        flip in any::<bool>(),
        crashed in any::<bool>(),
    ) {
        let ending = if crashed { Ending::Crashed } else { Ending::Closed };
        let (_, _, _, frames) = pristine(ending);
        let last = frames.last().unwrap();
        let data_end = last.offset + last.len;
        // Over the frames (header included) and a little past the end of the data.
        let start = annals::format::SEGMENT_HEADER_LEN;
        let offset = start + ((data_end + 64 - start) as f64 * at) as usize;
        damage_is_refused_or_reported(ending, offset, len, flip);
    }
}

/// A Buffered store that syncs only when asked: returns (live dir, store, events synced).
fn buffered(appends_before_sync: u64) -> (tempfile::TempDir, Store, u64) {
    let live = tempfile::tempdir().unwrap();
    let options = options()
        .durability(Durability::Buffered)
        .flush_interval(Duration::from_secs(3600));
    let store = Store::open_with(live.path(), options).unwrap();
    let synced = fill(&store, appends_before_sync);
    store.sync().unwrap();
    (live, store, synced)
}

/// Appends `appends` more appends of one event each after `first` events.
fn more(store: &Store, first: u64, appends: u64) {
    for n in first..first + appends {
        store
            .append("s", ExpectedVersion::Any, [event("s", n)])
            .unwrap();
    }
}

#[test]
fn pages_lost_after_the_last_sync_under_buffered_leave_the_synced_prefix() {
    let mut rng = common::Rng::from_clock("pages_lost_after_the_last_sync");
    for trial in 0..20 {
        let (live, store, synced) = buffered(60);
        let synced_end = frames(&segment_files(live.path())[0])
            .last()
            .map_or(0, |f| f.offset + f.len);
        more(&store, synced, 80);
        let dir = tempfile::tempdir().unwrap();
        crash_copy(live.path(), dir.path());
        drop(store);
        // The power fails: some pages written after the sync never reach the disk.
        let tail = segment_files(dir.path()).pop().unwrap();
        let all = frames(&tail);
        let data_end = all.last().unwrap().offset + all.last().unwrap().len;
        let first_page = synced_end / 4096;
        let pages = (data_end.div_ceil(4096) - first_page) as u64;
        let mut bytes = std::fs::read(&tail).unwrap();
        let lost = 1 + rng.below(pages);
        for _ in 0..lost {
            let page = (first_page + rng.below(pages) as usize) * 4096;
            let from = page.max(synced_end);
            bytes[from..page + 4096].fill(0);
        }
        std::fs::write(&tail, &bytes).unwrap();

        let store = Store::open_with(dir.path(), options())
            .unwrap_or_else(|e| panic!("trial {trial}: refused after a power loss: {e}"));
        let kept = read_everything(&store);
        assert!(
            kept.len() as u64 >= synced,
            "trial {trial}: synced events lost"
        );
        for (n, ev) in (0u64..).zip(&kept) {
            assert_event(ev, "s", n, n, n);
        }
        if (kept.len() as u64) < synced + 80 {
            assert!(
                store.open_report().cut.is_some(),
                "trial {trial}: cut not reported"
            );
        }
        // The store goes on from where it was cut.
        let next = kept.len() as u64;
        store
            .append("s", ExpectedVersion::Exact(next - 1), [event("s", next)])
            .unwrap();
    }
}

#[test]
fn damage_to_synced_data_under_buffered_is_refused_when_a_later_frame_proves_it() {
    let (live, store, synced) = buffered(60);
    more(&store, synced, 20);
    let dir = tempfile::tempdir().unwrap();
    crash_copy(live.path(), dir.path());
    drop(store);
    let tail = segment_files(dir.path()).pop().unwrap();
    let frames = frames(&tail);
    // A frame synced before the last 20 appends were written: they carry the proof.
    let victim = frames[30];
    overwrite(&tail, victim.offset + 40, &[0; 100]);
    assert_eq!(expect_corrupt(dir.path(), &tail), victim.offset as u64);
}
