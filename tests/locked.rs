//! A store directory is open in one place at a time: a second open gives `Error::Locked`, in
//! this process or another; the lock dies with its holder, kill -9 included.

mod common;

use std::io::Write;
use std::time::Duration;

use annals::{Error, EventData, ExpectedVersion, Store};
use common::child::spawn_self;

const CHILD_ENV: &str = "ANNALS_LOCK_CHILD";
const TEST_NAME: &str = "the_lock_of_a_killed_process_is_released";

#[test]
fn a_second_open_in_the_same_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    match Store::open(dir.path()) {
        Err(Error::Locked { dir: d }) => assert_eq!(d, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // A clone is the same handle, so the store stays locked until the last one goes.
    let clone = store.clone();
    store.close().unwrap();
    assert!(matches!(Store::open(dir.path()), Err(Error::Locked { .. })));
    drop(clone);
    let reopened = Store::open(dir.path()).unwrap();
    assert_eq!(reopened.next_position(), 0);
}

#[test]
fn the_lock_of_a_killed_process_is_released() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let store = Store::open(&dir).unwrap();
        store
            .append(
                "held",
                ExpectedVersion::NoStream,
                [EventData::new("Held", vec![1])],
            )
            .unwrap();
        // Straight to stdout: the test harness captures `println!`.
        let mut out = std::io::stdout().lock();
        // The harness has printed "test name ... " without a newline.
        writeln!(out, "\nholding").unwrap();
        out.flush().unwrap();
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = spawn_self(TEST_NAME, CHILD_ENV, dir.path().to_str().unwrap());
    loop {
        let line = lines.recv_timeout(Duration::from_secs(60)).unwrap();
        if line == "holding" {
            break;
        }
    }
    assert!(matches!(Store::open(dir.path()), Err(Error::Locked { .. })));
    child.kill_9();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.stream_version("held"), Some(0));
}
