//! The built `annals` binary, run as a user runs it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use annals::{EventData, ExpectedVersion, Options, RecordedEvent, Store};
use assert_cmd::Command;

fn annals() -> Command {
    Command::cargo_bin("annals").expect("the annals binary")
}

fn run(args: &[&str]) -> std::process::Output {
    annals().args(args).output().expect("run annals")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A store with every kind of payload and metadata the format must carry.
fn varied_store(dir: &Path) -> Vec<RecordedEvent> {
    let store = Store::open(dir).expect("open");
    let events = [
        (
            "order-1",
            EventData::new("Placed", br#"{"total":12,"items":[1.50,"a"]}"#.to_vec()),
        ),
        (
            "order-1",
            EventData::new("Pretty", b"{\n  \"a\": 1\n}".to_vec()).id(0x1234),
        ),
        (
            "user-7",
            EventData::new("Binary", vec![0xff, 0x00, 0xfe, b'\n'])
                .metadata(vec![0x80, 0x81])
                .timestamp(1_600_000_000_123_456),
        ),
        (
            "order-1",
            EventData::new("Empty", Vec::new()).metadata(b"{\"by\":\"web\"}".to_vec()),
        ),
        (
            "user-7",
            EventData::new("Text", "héllo\tworld".as_bytes().to_vec())
                .id(u128::MAX)
                .metadata(b"plain".to_vec()),
        ),
    ];
    for (stream, event) in events {
        store
            .append(stream, ExpectedVersion::Any, [event])
            .expect("append");
    }
    let all = store
        .read_all(0)
        .collect::<annals::Result<Vec<_>>>()
        .expect("read");
    store.close().expect("close");
    all
}

#[test]
fn dump_then_import_then_dump_is_byte_identical_and_import_again_is_harmless() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let original = varied_store(&src);
    let dump = run(&["dump", path(&src)]);
    assert!(dump.status.success(), "{}", text(&dump.stderr));
    let lines = text(&dump.stdout);
    assert_eq!(lines.lines().count(), original.len());
    // JSON payloads stay JSON for jq; the rest survives in another field.
    let first: serde_json::Value =
        serde_json::from_str(lines.lines().next().expect("line")).expect("JSON");
    assert_eq!(first["payload"]["total"], 12);
    assert!(lines.contains("\"payload_base64\""), "{lines}");

    let file = dir.path().join("events.jsonl");
    std::fs::write(&file, &dump.stdout).expect("write");
    let import = run(&["import", path(&dst), path(&file)]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    assert!(
        text(&import.stdout).contains("imported 5 events"),
        "{}",
        text(&import.stdout)
    );
    let again = run(&["dump", path(&dst)]);
    assert_eq!(
        text(&again.stdout),
        lines,
        "dump of the imported store differs"
    );

    let imported = Store::open_read_only(&dst)
        .expect("open")
        .read_all(0)
        .collect::<annals::Result<Vec<_>>>()
        .expect("read");
    assert_eq!(format!("{imported:?}"), format!("{original:?}"));

    // From stdin, a second time: nothing new.
    let rerun = annals()
        .args(["import", path(&dst)])
        .write_stdin(dump.stdout.clone())
        .output()
        .expect("run");
    assert!(rerun.status.success(), "{}", text(&rerun.stderr));
    assert!(
        text(&rerun.stdout).contains("imported 0 events (5 already"),
        "{}",
        text(&rerun.stdout)
    );
    assert_eq!(text(&run(&["dump", path(&dst)]).stdout), lines);
}

#[test]
fn dump_filters_by_stream_category_type_position_time_and_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    varied_store(dir.path());
    let d = path(dir.path());
    let positions = |args: &[&str]| -> Vec<u64> {
        let out = run(&[&["dump", d], args].concat());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("JSON")["position"]
                    .as_u64()
                    .expect("position")
            })
            .collect()
    };
    assert_eq!(positions(&[]), [0, 1, 2, 3, 4]);
    assert_eq!(positions(&["--stream", "user-7"]), [2, 4]);
    assert_eq!(positions(&["--category", "order"]), [0, 1, 3]);
    assert_eq!(positions(&["--type", "Binary"]), [2]);
    assert_eq!(positions(&["--from", "1", "--to", "3"]), [1, 2]);
    assert_eq!(positions(&["--until", "2021-01-01T00:00:00Z"]), [2]);
    assert_eq!(
        positions(&["--since", "2021-01-01T00:00:00Z", "--limit", "2"]),
        [0, 1]
    );
    let bad = run(&["dump", d, "--since", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("RFC 3339"),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn a_bad_line_is_an_error_naming_it_and_what_came_before_stays() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = concat!(
        r#"{"stream":"s","version":0,"type":"A","timestamp":5,"payload":{"n":0}}"#,
        "\n",
        r#"{"stream":"s","version":1,"type":"A","timestamp":6,"payload":{"n":1}}"#,
        "\n",
        r#"{"stream":"s","version":2,"type":"A","payload":{"n":2}"#,
        "\n",
        r#"{"stream":"s","version":3,"type":"A","payload":{"n":3}}"#,
        "\n",
    );
    let out = annals()
        .args(["import", path(dir.path())])
        .write_stdin(input)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("line 3"), "{err}");
    let store = Store::open_read_only(dir.path()).expect("open");
    assert_eq!(store.next_position(), 2);
    assert_eq!(store.stream_version("s"), Some(1));

    // A version that does not follow the stream's is refused, naming the line.
    let gap = r#"{"stream":"s","version":7,"type":"A","payload":{}}"#;
    let out = annals()
        .args(["import", path(dir.path())])
        .write_stdin(gap)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_directories_give_one_line_and_a_non_zero_exit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let not_a_store = dir.path().join("plain");
    std::fs::create_dir(&not_a_store).expect("mkdir");
    std::fs::write(not_a_store.join("notes.txt"), "hello").expect("write");
    for command in ["stat", "verify", "dump", "checkpoints", "tail"] {
        for d in [&missing, &not_a_store] {
            let out = run(&[command, path(d)]);
            assert_eq!(out.status.code(), Some(2), "{command} {d:?}");
            let err = text(&out.stderr);
            assert_eq!(err.lines().count(), 1, "{command}: {err}");
            assert!(err.starts_with("annals: "), "{err}");
        }
    }
    assert!(
        !missing.exists(),
        "an inspecting command created the directory"
    );
    for d in [&missing, &not_a_store] {
        for args in [
            vec!["compact", path(d)],
            vec!["erase", path(d), "user-1", "--yes"],
        ] {
            let out = run(&args);
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            assert_eq!(text(&out.stderr).lines().count(), 1, "{args:?}");
        }
    }
    assert!(!missing.exists(), "compact or erase created a store");
    assert!(
        !not_a_store.join("MANIFEST").exists(),
        "compact or erase made a store"
    );
    assert!(run(&["--help"]).status.success());
    for command in [
        "stat",
        "verify",
        "dump",
        "import",
        "tail",
        "backup",
        "checkpoints",
        "compact",
        "erase",
    ] {
        let help = run(&[command, "--help"]);
        assert!(
            help.status.success() && !help.stdout.is_empty(),
            "{command} --help"
        );
    }
}

#[test]
fn verify_names_the_file_of_a_flipped_byte_and_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    varied_store(dir.path());
    let sound = run(&["verify", path(dir.path())]);
    assert_eq!(sound.status.code(), Some(0), "{}", text(&sound.stdout));
    assert!(text(&sound.stdout).contains("sound"));

    let segment = dir.path().join(format!("{:020}.log", 0));
    let mut bytes = std::fs::read(&segment).expect("read");
    let at = bytes
        .windows(5)
        .position(|w| w == b"total")
        .expect("payload bytes");
    bytes[at] ^= 0x20;
    std::fs::write(&segment, bytes).expect("write");
    let damaged = run(&["verify", path(dir.path())]);
    assert_eq!(damaged.status.code(), Some(1));
    let out = text(&damaged.stdout);
    assert!(
        out.contains(&format!("damaged: {}", segment.display())),
        "{out}"
    );
    assert!(out.contains("stream \"order-1\""), "{out}");
}

#[test]
fn stat_and_checkpoints_describe_a_store_open_for_writing_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    for n in 0..10 {
        store
            .append(
                &format!("order-{}", n % 3),
                ExpectedVersion::Any,
                [EventData::new("T", vec![n])],
            )
            .expect("append");
    }
    store.save_checkpoint("projector", 4).expect("checkpoint");
    // order-0 holds positions 0, 3, 6, 9: versions 0..=3, all hidden by the delete.
    store
        .delete_stream("order-0", ExpectedVersion::Exact(3))
        .expect("delete");
    // The writer stays open: every command here reads beside it.
    let out = run(&["stat", path(dir.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stat = text(&out.stdout);
    assert!(stat.contains("events       10"), "{stat}");
    assert!(stat.contains("streams      3"), "{stat}");
    assert!(
        stat.contains("projector: position 4, 6 events behind"),
        "{stat}"
    );
    assert!(stat.contains("retention    1 streams with rules"), "{stat}");
    // Its events are in the tail, which compaction leaves alone.
    assert!(
        stat.contains("reclaimable by `annals compact`: 0 events"),
        "{stat}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["stat", path(dir.path()), "--json"]).stdout).expect("JSON");
    assert_eq!(json["events"], 10);
    assert_eq!(json["last"]["position"], 9);
    let out = run(&["checkpoints", path(dir.path())]);
    assert_eq!(
        text(&out.stdout).trim(),
        "projector: position 4, 6 events behind"
    );
    assert_eq!(
        text(&run(&["dump", path(dir.path())]).stdout)
            .lines()
            .count(),
        10
    );
}

#[test]
fn tail_follows_live_appends_and_saves_its_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("open");
    store
        .append(
            "s",
            ExpectedVersion::Any,
            [EventData::new("T", b"{}".to_vec())],
        )
        .expect("append");
    let bin = assert_cmd::cargo::cargo_bin("annals");
    let mut child = StdCommand::new(bin)
        .args([
            "tail",
            path(dir.path()),
            "--checkpoint",
            "tailer",
            "--limit",
            "6",
            "--poll-ms",
            "20",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    let stdout = child.stdout.take().expect("stdout");
    // A watchdog: a tail that stops printing fails the test instead of hanging it.
    let pid = child.id();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(60));
        let _ = StdCommand::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    });
    let mut lines = BufReader::new(stdout).lines();
    // No checkpoint yet: it starts at position 0, so the first event comes at once.
    let first = lines.next().expect("a line").expect("read");
    assert!(first.contains("\"position\":0"), "{first}");
    for n in 1..6u8 {
        store
            .append(
                "s",
                ExpectedVersion::Any,
                [EventData::new("T", vec![b'0' + n])],
            )
            .expect("append");
        let line = lines.next().expect("a line").expect("read");
        assert!(line.contains(&format!("\"position\":{n}")), "{line}");
    }
    assert!(child.wait().expect("wait").success());
    assert_eq!(store.checkpoint("tailer").expect("checkpoint"), Some(6));
}

#[test]
fn backup_while_a_writer_appends_copies_a_consistent_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (live, copy) = (dir.path().join("live"), dir.path().join("copy"));
    let store = Store::open(&live).expect("open");
    let stop = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let ev = EventData::new("T", n.to_le_bytes().to_vec());
                let expected = match n {
                    0 => ExpectedVersion::NoStream,
                    n => ExpectedVersion::Exact(n - 1),
                };
                store.append("s", expected, [ev]).expect("append");
                n += 1;
            }
        });
        while store.next_position() < 50 {
            std::thread::yield_now();
        }
        let out = run(&["backup", path(&live), path(&copy)]);
        stop.store(true, Ordering::Relaxed);
        out
    });
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("backed up "),
        "{}",
        text(&out.stdout)
    );
    let copied = Store::open(&copy).expect("open copy");
    let n = copied.next_position();
    assert!(n >= 50);
    let originals = store
        .read_all(0)
        .take(n as usize)
        .collect::<annals::Result<Vec<_>>>()
        .expect("read");
    let copies = copied
        .read_all(0)
        .collect::<annals::Result<Vec<_>>>()
        .expect("read");
    assert_eq!(format!("{copies:?}"), format!("{originals:?}"));
    assert_eq!(run(&["verify", path(&copy)]).status.code(), Some(0));
    let again = run(&["backup", path(&live), path(&copy)]);
    assert_eq!(again.status.code(), Some(2), "a backup never overwrites");
}

#[test]
fn compact_reclaims_what_stat_shows_and_erase_asks_unless_told_yes() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store =
            Store::open_with(dir.path(), Options::default().segment_size(64 << 10)).expect("open");
        for n in 0..2_000u32 {
            let stream = ["cart-1", "user-77", "order-1"][n as usize % 3];
            store
                .append(
                    stream,
                    ExpectedVersion::Any,
                    [EventData::new("T", vec![7; 120])],
                )
                .expect("append");
        }
        store
            .delete_stream("cart-1", ExpectedVersion::Any)
            .expect("delete");
    }
    let stat = text(&run(&["stat", path(dir.path())]).stdout);
    assert!(
        !stat.contains("reclaimable by `annals compact`: 0 events"),
        "{stat}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["stat", path(dir.path()), "--json"]).stdout).expect("JSON");
    let reclaimable = json["retention"]["reclaimable_events"]
        .as_u64()
        .expect("count");
    assert!(reclaimable > 0);

    let out = run(&["compact", path(dir.path())]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("{reclaimable} events removed")),
        "{said}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["stat", path(dir.path()), "--json"]).stdout).expect("JSON");
    assert_eq!(json["retention"]["reclaimable_events"], 0);

    // Not on a terminal: erase refuses without --yes, and nothing changes.
    let out = annals()
        .args(["erase", path(dir.path()), "user-77"])
        .write_stdin("user-77\n")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--yes"), "{}", text(&out.stderr));
    let dump = text(&run(&["dump", path(dir.path()), "--stream", "user-77"]).stdout);
    assert_eq!(dump.lines().count(), 667);

    let out = run(&["erase", path(dir.path()), "user-77", "--yes"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("667 events removed"));
    let dump = text(&run(&["dump", path(dir.path())]).stdout);
    assert!(!dump.contains("user-77"));
    let out = run(&["erase", path(dir.path()), "user-77", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("has no events"));
    assert!(run(&["verify", path(dir.path())]).status.success());

    // A store open elsewhere is refused with what to do instead.
    let _open = Store::open(dir.path()).expect("open");
    let out = run(&["compact", path(dir.path())]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("Store::compact"),
        "{}",
        text(&out.stderr)
    );
}
