//! `annals serve`: the server started on a free loopback port against a store built here,
//! each page checked over HTTP; bad URLs give 400/404 pages; a page in headless Chromium.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use annals::{EventData, ExpectedVersion, Store};

/// A running `annals serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path) -> Server {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("annals"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    Server { child, addr }
}

/// GET `path`: the status, the content type and the body.
fn get(server: &Server, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

fn ok(server: &Server, path: &str) -> String {
    let (status, _, body) = get(server, path);
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// 30 order streams of JSON events, a binary event, a checkpoint 5 behind.
fn build(dir: &Path) {
    let store = Store::open(dir).unwrap();
    for n in 0..90u64 {
        let ev = EventData::new(
            if n % 3 == 0 {
                "OrderPlaced"
            } else {
                "ItemAdded"
            },
            format!("{{\"total\":{n},\"note\":\"<b>&\"}}"),
        )
        .metadata(b"{\"user\":\"alice\"}".to_vec())
        .timestamp(1_764_633_600_000_000 + n * 60_000_000);
        store
            .append(&format!("order-{}", n % 30), ExpectedVersion::Any, [ev])
            .unwrap();
    }
    store
        .append(
            "blob-1",
            ExpectedVersion::Any,
            [EventData::new("Blob", vec![0, 159, 146, 150, 255])
                .timestamp(1_764_633_600_000_000 + 95 * 60_000_000)],
        )
        .unwrap();
    store.save_checkpoint("projector", 86).unwrap();
}

#[test]
fn every_page_over_http() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let server = serve(dir.path());

    let overview = ok(&server, "/");
    for part in [
        "<span class=\"num\">91</span>",
        "<span class=\"num\">31</span>",
        "projector",
        "<span class=\"num\">5</span>",
        "/plot/appends.svg",
    ] {
        assert!(overview.contains(part), "overview lacks {part}");
    }
    // Streams by prefix and by category, with their counts.
    let prefixed = ok(&server, "/streams?prefix=order-1");
    assert!(
        prefixed.contains(">order-1<")
            && prefixed.contains(">order-19<")
            && !prefixed.contains(">order-2<")
    );
    let category = ok(&server, "/streams?category=order");
    assert_eq!(category.matches("href=\"/stream?name=order-").count(), 30);
    assert!(!category.contains("blob-1"));
    // One stream both ways.
    let forward = ok(&server, "/stream?name=order-3");
    let backward = ok(&server, "/stream?name=order-3&dir=back");
    let first = |page: &str, a: &str, b: &str| page.find(a).unwrap() < page.find(b).unwrap();
    assert!(first(&forward, "/event/3\"", "/event/63\""), "oldest first");
    assert!(
        first(&backward, "/event/63\"", "/event/3\""),
        "newest first"
    );
    // One event in full: JSON formatted (and escaped), metadata, and hex for bytes.
    let event = ok(&server, "/event/3");
    assert!(
        event.contains("&quot;total&quot;: 3") && event.contains("&lt;b&gt;&amp;"),
        "{event}"
    );
    assert!(event.contains("&quot;user&quot;: &quot;alice&quot;"));
    let blob = ok(&server, "/event/90");
    assert!(blob.contains("00 9f 92 96 ff"), "{blob}");
    // Search by type and time.
    let placed = ok(&server, "/search?type=OrderPlaced");
    assert_eq!(placed.matches("<td>OrderPlaced</td>").count(), 30);
    assert!(!placed.contains("<td>ItemAdded</td>"));
    let window = ok(
        &server,
        "/search?since=2025-12-02T01:00:00Z&until=2025-12-02T01:10:00Z",
    );
    assert_eq!(window.matches("href=\"/event/").count(), 10, "{window}");
    assert!(window.contains("/event/60\"") && window.contains("/event/69\""));
    // The live tail shows what is appended after the server started.
    let tail = ok(&server, "/tail");
    assert!(tail.contains("http-equiv=\"refresh\""));
    {
        let store = Store::open(dir.path());
        // The server holds it read-only: the writer can still open it.
        let store = store.unwrap();
        store
            .append(
                "late-1",
                ExpectedVersion::Any,
                [EventData::new("Late", b"{}".to_vec())],
            )
            .unwrap();
    }
    // The catalog is brought up to date at most once a second.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert!(ok(&server, "/tail").contains("late-1"));
    let overview = ok(&server, "/");
    assert!(
        overview.contains("<span class=\"num\">92</span>")
            && overview.contains("<span class=\"num\">32</span>"),
        "{overview}"
    );
    assert!(ok(&server, "/streams?prefix=late").contains(">late-1<"));
    // Plots are SVG.
    for plot in ["appends", "types", "segments", "lag"] {
        let (status, content_type, body) = get(&server, &format!("/plot/{plot}.svg"));
        assert_eq!(
            (status, content_type.as_str()),
            (200, "image/svg+xml"),
            "{plot}"
        );
        assert!(
            body.starts_with("<svg") && body.ends_with("</svg>"),
            "{plot}"
        );
    }
    assert!(ok(&server, "/plot/types.svg").contains("ItemAdded"));
    assert!(ok(&server, "/plot/lag.svg").contains("projector"));
    // Bad URLs: pages, never a panic.
    for (path, status) in [
        ("/stream?name=nobody", 404),
        ("/stream", 400),
        ("/event/12345", 404),
        ("/event/abc", 400),
        ("/stream?name=order-1&from=x", 400),
        ("/stream?name=order-1&from=99999999999999999999999", 400),
        ("/event/18446744073709551615", 404),
        ("/search?since=yesterday", 400),
        ("/plot/pie.svg", 404),
        ("/nowhere", 404),
    ] {
        let (got, _, body) = get(&server, path);
        assert_eq!(got, status, "{path}");
        assert!(body.contains("Back to the overview"), "{path}");
    }
    // Requests addressed to another host name are refused (DNS rebinding); pages carry no
    // script and say so.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: evil.example:7070\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut refused = String::new();
    stream.read_to_string(&mut refused).unwrap();
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut local = String::new();
    stream.read_to_string(&mut local).unwrap();
    assert!(
        local.starts_with("HTTP/1.1 200")
            && local
                .to_ascii_lowercase()
                .contains("content-security-policy: default-src 'none'")
    );
    assert!(!local.contains("<script"));
    // The server is still there.
    assert!(ok(&server, "/").contains("Overview"));
}

#[test]
fn odd_names_are_escaped_and_long_streams_page() {
    let dir = tempfile::tempdir().unwrap();
    let odd = "a/b?c#d%e f\u{2039}\"<i>é..";
    {
        let store = Store::open(dir.path()).unwrap();
        let events = (0..120u64)
            .map(|n| EventData::new("<script>alert(1)</script>", format!("{{\"n\":{n}}}")));
        for ev in events {
            store.append(odd, ExpectedVersion::Any, [ev]).unwrap();
        }
        for name in ["..", "fifty"] {
            for n in 0..50u64 {
                store
                    .append(
                        name,
                        ExpectedVersion::Any,
                        [EventData::new("T", format!("{n}"))],
                    )
                    .unwrap();
            }
        }
    }
    let server = serve(dir.path());
    let list = ok(&server, "/streams");
    assert!(
        !list.contains("<script>") && !list.contains("<i>"),
        "escaped"
    );
    // Follow the link the list gives for the odd name: it leads to that stream.
    let href = list
        .split("href=\"")
        .map(|rest| rest.split('"').next().unwrap_or_default())
        .find(|h| h.starts_with("/stream?name=a%2Fb"))
        .expect("a link to the odd stream")
        .to_string();
    let page = ok(&server, &href.replace("&amp;", "&"));
    assert!(
        page.contains("Last version 119") && page.contains("&lt;script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>"));
    // Forward: 50 a page, "More" goes on at version 50 without repeating one.
    let more = |page: &str| {
        page.split("href=\"")
            .map(|r| {
                r.split('"')
                    .next()
                    .unwrap_or_default()
                    .replace("&amp;", "&")
            })
            .find(|h| h.contains("from="))
    };
    let second = ok(&server, &more(&page).expect("a second page"));
    assert!(
        second.contains("/event/50\"") && !second.contains("/event/49\""),
        "{second}"
    );
    let third = ok(&server, &more(&second).expect("a third page"));
    assert!(
        third.contains("/event/119\"") && more(&third).is_none(),
        "the last page has no More"
    );
    // Backward: a stream of exactly 50 ends without a "More" that would show version 0 again.
    let back = ok(&server, "/stream?name=fifty&dir=back");
    assert_eq!(back.matches("href=\"/event/").count(), 50);
    assert!(more(&back).is_none(), "{back}");
    // A stream named ".." has a page of its own.
    let dots = ok(&server, "/stream?name=..");
    assert!(dots.contains("Stream .."), "{dots}");
}

#[test]
fn listening_beyond_this_machine_needs_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    // Were the refusal gone, the server would run: give it a deadline instead of waiting.
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("annals"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("annals serve listened on 0.0.0.0 without --allow-remote");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(stderr.contains("--allow-remote"), "{stderr}");
}

/// Headless Chromium, if installed (`.ci/run` installs Debian's `chromium` and sets
/// `ANNALS_REQUIRE_CHROMIUM=1`, which makes a missing one a failure).
fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("ANNALS_REQUIRE_CHROMIUM").is_none(),
            "chromium is not installed"
        );
        eprintln!("skipped: chromium is not installed");
    }
    found
}

#[test]
fn pages_in_a_real_browser() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    build(dir.path());
    let server = serve(dir.path());
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let run = |args: &[String]| {
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The rendered DOM of the overview and of a stream page.
    let dom = run(&["--dump-dom".into(), format!("http://{}/", server.addr)]);
    assert!(
        dom.contains("<h1>Overview</h1>") && dom.contains("projector"),
        "{dom}"
    );
    let stream = run(&[
        "--dump-dom".into(),
        format!("http://{}/stream?name=order-3&dir=back", server.addr),
    ]);
    assert!(
        stream.contains("Stream order-3") && stream.contains("/event/63"),
        "{stream}"
    );
    // A screenshot of the overview, kept under target/ (CI keeps it as an artifact).
    let shot = shots.join("overview.png");
    let _ = std::fs::remove_file(&shot);
    run(&[
        format!("--screenshot={}", shot.display()),
        format!("http://{}/", server.addr),
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.len() > 10_000 && png.starts_with(b"\x89PNG"),
        "a real screenshot: {} bytes",
        png.len()
    );
}
