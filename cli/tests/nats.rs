//! `annals relay --once` then `annals mirror --once` against a real `nats-server`: the
//! mirror's dump equals the source's.

#[path = "../../nats/tests/common/mod.rs"]
mod common;

use assert_cmd::Command;

fn annals() -> Command {
    Command::cargo_bin("annals").unwrap()
}

#[test]
fn relay_then_mirror_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = common::NatsServer::start(dir.path()) else {
        return;
    };
    let (source, replica) = (dir.path().join("source"), dir.path().join("replica"));
    {
        let store = annals::Store::open(&source).unwrap();
        for n in 0..500u64 {
            let ev = annals::EventData::new(format!("T{}", n % 3), format!("{{\"n\":{n}}}"))
                .id(u128::from(n) + 1);
            store
                .append(
                    &format!("cart-{}", n % 11),
                    annals::ExpectedVersion::Any,
                    [ev],
                )
                .unwrap();
        }
    }
    let relayed = annals()
        .args(["relay", "--once", "--server", &server.url()])
        .arg(&source)
        .assert()
        .success();
    let out = String::from_utf8_lossy(&relayed.get_output().stdout).into_owned();
    assert!(out.contains("published 500 events"), "{out}");
    // Run again: nothing new, nothing published.
    let again = annals()
        .args(["relay", "--once", "--server", &server.url()])
        .arg(&source)
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&again.get_output().stdout).contains("published 0 events"));
    let mirrored = annals()
        .args(["mirror", "--once", "--server", &server.url()])
        .arg(&replica)
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&mirrored.get_output().stdout).contains("appended 500 events"));
    let dump = |dir: &std::path::Path| {
        annals()
            .arg("dump")
            .arg(dir)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone()
    };
    assert_eq!(dump(&source), dump(&replica));
    // A server that is not there: an error naming it, exit code 2.
    let nowhere = annals()
        .args(["relay", "--once", "--server", "nats://127.0.0.1:1"])
        .arg(&source)
        .assert()
        .code(2);
    assert!(String::from_utf8_lossy(&nowhere.get_output().stderr).contains("127.0.0.1:1"));
}
