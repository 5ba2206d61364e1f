//! A torn tail (garbage or part of a frame after the last complete append) is cut on open;
//! every complete append is kept, and new appends continue densely and survive a reopen.

mod common;

use std::path::Path;

use annals::{Error, ExpectedVersion, Store};
use common::*;

/// A store with `appends` appends of 3 events each to one stream, as a crash leaves it (no
/// clean close). Returns the path of its tail segment.
fn store_with(dir: &Path, appends: u64) -> std::path::PathBuf {
    let live = tempfile::tempdir().unwrap();
    let store = Store::open_with(live.path(), small_segments()).unwrap();
    for a in 0..appends {
        store
            .append(
                "s",
                ExpectedVersion::Any,
                (3 * a..3 * a + 3).map(|n| event("s", n)),
            )
            .unwrap();
    }
    crash_copy(live.path(), dir);
    drop(store);
    segment_files(dir).pop().unwrap()
}

/// Opens the store and checks that it holds exactly the first `appends` appends of
/// [`store_with`], then appends one more and checks that it survives another reopen.
fn check_recovered(dir: &Path, appends: u64) {
    let store = Store::open_with(dir, small_segments()).unwrap();
    let events = read_everything(&store);
    assert_eq!(events.len() as u64, 3 * appends);
    for (n, ev) in (0u64..).zip(&events) {
        assert_event(ev, "s", n, n, n);
    }
    let r = store
        .append(
            "s",
            ExpectedVersion::Exact(3 * appends - 1),
            [event("s", 3 * appends)],
        )
        .unwrap();
    assert_eq!(r.first_position, 3 * appends);
    assert_eq!(r.first_version, 3 * appends);
    drop(store);

    let store = Store::open_with(dir, small_segments()).unwrap();
    assert_eq!(
        store.open_report().cut,
        None,
        "a second open finds nothing to cut"
    );
    let events = read_everything(&store);
    assert_eq!(events.len() as u64, 3 * appends + 1);
    assert_event(
        &events[3 * appends as usize],
        "s",
        3 * appends,
        3 * appends,
        3 * appends,
    );
}

#[test]
fn garbage_after_the_last_append_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let tail = store_with(dir.path(), 10);
    let last = *frames(&tail).last().unwrap();
    let end = last.offset + last.len;
    overwrite(&tail, end, &[0x5A; 700]);

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let cut = store
        .open_report()
        .cut
        .clone()
        .expect("the garbage is reported");
    assert_eq!(cut.file, tail);
    assert_eq!(cut.offset, end as u64);
    drop(store);
    check_recovered(dir.path(), 10);
}

#[test]
fn half_a_frame_is_cut_and_its_append_is_gone_entirely() {
    let dir = tempfile::tempdir().unwrap();
    let tail = store_with(dir.path(), 10);
    let last = *frames(&tail).last().unwrap();
    // The second half of the last frame never reached the disk.
    overwrite(
        &tail,
        last.offset + last.len / 2,
        &vec![0; last.len - last.len / 2],
    );

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    let cut = store
        .open_report()
        .cut
        .clone()
        .expect("the torn frame is reported");
    assert_eq!(cut.offset, last.offset as u64);
    assert_eq!(store.next_position(), 27);
    drop(store);
    check_recovered(dir.path(), 9);
}

#[test]
fn a_file_cut_short_in_the_middle_of_a_frame_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let tail = store_with(dir.path(), 10);
    let last = *frames(&tail).last().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&tail).unwrap();
    file.set_len((last.offset + 40) as u64).unwrap();
    drop(file);

    let store = Store::open_with(dir.path(), small_segments()).unwrap();
    assert_eq!(
        store.open_report().cut.as_ref().unwrap().offset,
        last.offset as u64
    );
    drop(store);
    check_recovered(dir.path(), 9);
}

#[test]
fn every_cut_point_of_the_last_frame_keeps_exactly_the_complete_appends() {
    let dir = tempfile::tempdir().unwrap();
    let tail = store_with(dir.path(), 4);
    let original = std::fs::read(&tail).unwrap();
    let last = *frames(&tail).last().unwrap();
    for keep in (0..last.len).step_by(7) {
        // Only the first `keep` bytes of the last frame were written.
        let mut damaged = original.clone();
        damaged[last.offset + keep..last.offset + last.len].fill(0);
        std::fs::write(&tail, &damaged).unwrap();
        let store = Store::open_with(dir.path(), small_segments()).unwrap();
        assert_eq!(store.next_position(), 9, "keeping {keep} bytes");
        assert_eq!(read_everything(&store).len(), 9);
    }
}

#[test]
fn a_damaged_frame_followed_by_a_later_write_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let tail = store_with(dir.path(), 10);
    let frames = frames(&tail);
    let victim = frames[frames.len() - 3];
    // A flipped payload byte in an acknowledged append with two more appends after it.
    let at = victim.offset + victim.len - 5;
    let mut byte = [0u8];
    use std::os::unix::fs::FileExt;
    std::fs::File::open(&tail)
        .unwrap()
        .read_exact_at(&mut byte, at as u64)
        .unwrap();
    overwrite(&tail, at, &[byte[0] ^ 0x10]);

    match Store::open_with(dir.path(), small_segments()) {
        Err(Error::Corrupt { file, offset, .. }) => {
            assert_eq!(file, tail);
            assert_eq!(offset, victim.offset as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Nothing was cut: the later appends are still on disk.
    assert_eq!(common::frames(&tail).len(), frames.len() - 3);
    let bytes = std::fs::read(&tail).unwrap();
    let after = frames[frames.len() - 2];
    assert!(annals::format::read_frame(&bytes[after.offset..]).is_ok());
}
