//! Unit tests of the model file system ([`super::model`]) and of the crash states it builds
//! ([`super::state`]): what a crash may keep or lose of unsynced pages and directory
//! entries, torn pages, and writing, restarting from and fingerprinting a state.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fs::trace::Op;
use crate::tests::rng::Rng;

use super::model::{Model, Variant};
use super::state::{PAGE, SECTOR};

const ROOT: &str = "/model";

fn p(name: &str) -> PathBuf {
    Path::new(ROOT).join(name)
}

fn write(name: &str, offset: u64, bytes: &[u8]) -> Op {
    Op::Write {
        path: p(name),
        offset,
        bytes: bytes.to_vec(),
    }
}

fn replay(ops: &[Op]) -> Model {
    let mut model = Model::new(Path::new(ROOT));
    for op in ops {
        model.apply(op);
    }
    model
}

/// Every distinct content of file `name` over many random crash states (`None`: absent).
fn outcomes(model: &Model, name: &str, variant: Variant) -> Vec<Option<Vec<u8>>> {
    let mut rng = Rng::new(7);
    let mut seen = Vec::new();
    for _ in 0..400 {
        let content = model.crash(variant, &mut rng).read(name);
        if !seen.contains(&content) {
            seen.push(content);
        }
    }
    seen
}

/// A durable file `f` holding `len` bytes of `fill`.
fn durable_file(fill: u8, len: usize) -> Vec<Op> {
    vec![
        Op::Create(p("f")),
        write("f", 0, &vec![fill; len]),
        Op::Sync(p("f")),
        Op::SyncDir(p("")),
    ]
}

#[test]
fn a_page_written_but_not_synced_may_be_absent() {
    let mut ops = durable_file(1, 100);
    ops.push(write("f", 100, &[2; 100]));
    let model = replay(&ops);
    let mut old = vec![1u8; 100];
    old.resize(200, 0);
    let new: Vec<u8> = [[1u8; 100], [2u8; 100]].concat();
    assert_eq!(
        model.crash(Variant::Synced, &mut Rng::new(1)).read("f"),
        Some(old.clone())
    );
    assert_eq!(
        model.crash(Variant::Latest, &mut Rng::new(1)).read("f"),
        Some(new.clone())
    );
    let seen = outcomes(&model, "f", Variant::Random);
    assert!(
        seen.contains(&Some(old)) && seen.contains(&Some(new)),
        "{seen:?}"
    );
}

#[test]
fn synced_data_survives_every_crash() {
    let model = replay(&durable_file(9, 10_000));
    for variant in [
        Variant::Latest,
        Variant::Synced,
        Variant::Random,
        Variant::Torn,
    ] {
        assert_eq!(outcomes(&model, "f", variant), [Some(vec![9u8; 10_000])]);
    }
    assert!(!model.has_pending());
}

#[test]
fn a_file_renamed_before_its_directory_is_synced_may_keep_its_old_name() {
    let mut ops = durable_file(3, 10);
    ops.push(Op::Rename {
        from: p("f"),
        to: p("g"),
    });
    let model = replay(&ops);
    let synced = model.crash(Variant::Synced, &mut Rng::new(1));
    assert_eq!(
        (synced.read("f").is_some(), synced.read("g").is_some()),
        (true, false)
    );
    let latest = model.crash(Variant::Latest, &mut Rng::new(1));
    assert_eq!(
        (latest.read("f").is_some(), latest.read("g").is_some()),
        (false, true)
    );
    // Never both, never neither: a rename is atomic.
    let mut rng = Rng::new(3);
    for _ in 0..100 {
        let state = model.crash(Variant::Random, &mut rng);
        assert!(state.read("f").is_some() != state.read("g").is_some());
    }
}

#[test]
fn a_removed_file_may_come_back_until_the_directory_is_synced() {
    let mut ops = durable_file(3, 10);
    ops.push(Op::Remove(p("f")));
    let seen = outcomes(&replay(&ops), "f", Variant::Random);
    assert!(seen.contains(&None) && seen.contains(&Some(vec![3; 10])));
    ops.push(Op::SyncDir(p("")));
    assert_eq!(outcomes(&replay(&ops), "f", Variant::Random), [None]);
}

#[test]
fn a_file_created_but_not_synced_may_be_missing_or_empty() {
    let ops = [Op::Create(p("f")), write("f", 0, &[5; 8])];
    let seen = outcomes(&replay(&ops), "f", Variant::Random);
    for expected in [None, Some(vec![0; 8]), Some(vec![5; 8])] {
        assert!(
            seen.contains(&expected),
            "{expected:?} missing from {seen:?}"
        );
    }
}

#[test]
fn a_torn_page_mixes_new_and_synced_sectors() {
    let mut ops = durable_file(1, PAGE);
    ops.push(write("f", 0, &[2; PAGE]));
    let seen = outcomes(&replay(&ops), "f", Variant::Torn);
    let torn = |m: usize| {
        let mut b = vec![2u8; PAGE];
        b[m * SECTOR..].fill(1);
        Some(b)
    };
    for m in 1..PAGE / SECTOR {
        assert!(seen.contains(&torn(m)), "no page torn after {m} sectors");
    }
    assert_eq!(seen.len(), PAGE / SECTOR + 1, "only torn, old or new pages");
}

#[test]
fn an_intermediate_version_of_a_page_may_survive() {
    let mut ops = durable_file(0, 4);
    ops.extend([
        write("f", 0, &[1]),
        write("f", 1, &[2]),
        write("f", 2, &[3]),
    ]);
    let seen = outcomes(&replay(&ops), "f", Variant::Random);
    for expected in [[0, 0, 0, 0], [1, 0, 0, 0], [1, 2, 0, 0], [1, 2, 3, 0]] {
        assert!(seen.contains(&Some(expected.to_vec())), "{expected:?}");
    }
}

#[test]
fn a_truncation_not_synced_may_leave_the_old_bytes_behind_the_new_length() {
    let mut ops = durable_file(7, 2 * PAGE);
    ops.extend([
        Op::SetLen {
            path: p("f"),
            len: 10,
        },
        Op::SetLen {
            path: p("f"),
            len: 2 * PAGE as u64,
        },
    ]);
    let seen = outcomes(&replay(&ops), "f", Variant::Random);
    let mut cut = vec![7u8; 10];
    cut.resize(2 * PAGE, 0);
    assert!(seen.contains(&Some(cut)));
    assert!(seen.contains(&Some(vec![7u8; 2 * PAGE])));
}

#[test]
fn states_are_written_with_their_subdirectories() {
    let ops = [
        Op::Create(p("checkpoints/a")),
        write("checkpoints/a", 0, b"xyz"),
        Op::Sync(p("checkpoints/a")),
        Op::SyncDir(p("checkpoints")),
    ];
    let state = replay(&ops).crash(Variant::Synced, &mut Rng::new(1));
    let dir = tempfile::tempdir().unwrap();
    state.write_to(dir.path()).unwrap();
    assert_eq!(fs::read(dir.path().join("checkpoints/a")).unwrap(), b"xyz");
}

#[test]
fn a_model_started_from_a_state_holds_it_durably() {
    let mut ops = durable_file(1, PAGE + 10);
    ops.extend([
        write("f", 5, &[2; 10]),
        Op::Create(p("checkpoints/c")),
        write("checkpoints/c", 0, b"abc"),
    ]);
    let state = replay(&ops).crash(Variant::Latest, &mut Rng::new(1));
    let model = Model::from_state(Path::new("/other"), &state);
    assert!(!model.has_pending());
    let again = model.crash(Variant::Synced, &mut Rng::new(1));
    for name in ["f", "checkpoints/c"] {
        assert_eq!(again.read(name), state.read(name), "{name}");
    }
}

#[test]
fn equal_states_have_equal_fingerprints() {
    let mut ops = durable_file(1, 100);
    ops.push(write("f", 0, &[2; 10]));
    let model = replay(&ops);
    let fp = |v| model.crash(v, &mut Rng::new(1)).fingerprint();
    assert_eq!(fp(Variant::Latest), fp(Variant::Latest));
    assert_ne!(fp(Variant::Latest), fp(Variant::Synced));
}
