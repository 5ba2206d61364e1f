//! Against a real `nats-server` with JetStream (started by each test on a free loopback
//! port, with a temporary store directory): relay then mirror and compare stores event by
//! event; the server killed in the middle of a relay and restarted; the relay killed with
//! SIGKILL and restarted. In every case each event is in JetStream once, in position order,
//! and the mirror holds each once.

mod common;

use std::time::Duration;

use annals::{EventData, ExpectedVersion, Store};
use annals_nats::{message, Mirror, MirrorOptions, Relay, RelayOptions};
use async_nats::jetstream::{self, consumer};
use common::child::spawn_self;
use common::NatsServer;
use futures::StreamExt;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Appends events `from..to` over 37 streams: types, ids on even events, metadata on every
/// third, payloads of varying sizes, in batches.
fn fill(store: &Store, from: u64, to: u64) {
    let mut batch = Vec::new();
    for n in from..to {
        let stream = format!("order-{}", n % 37);
        let mut ev = EventData::new(
            format!("Type{}", n % 4),
            format!(
                "{{\"n\":{n},\"pad\":\"{}\"}}",
                "x".repeat((n % 300) as usize)
            ),
        )
        .timestamp(1_700_000_000_000_000 + n);
        if n % 2 == 0 {
            ev = ev.id(u128::from(n) << 64 | 7);
        }
        if n % 3 == 0 {
            ev = ev.metadata(vec![n as u8, 0, 255]);
        }
        batch.push((stream, ExpectedVersion::Any, vec![ev]));
        if batch.len() == 500 {
            for r in store.append_many(std::mem::take(&mut batch)).unwrap() {
                r.unwrap();
            }
        }
    }
    for r in store.append_many(batch).unwrap() {
        r.unwrap();
    }
}

/// The `Annals-Position` of every message in the JetStream stream, in stream order.
async fn jetstream_positions(url: &str) -> Vec<u64> {
    let js = jetstream::new(async_nats::connect(url).await.unwrap());
    let stream = js.get_stream("ANNALS").await.unwrap();
    let reader = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut positions = Vec::new();
    loop {
        let mut batch = reader.fetch().max_messages(1_000).messages().await.unwrap();
        let before = positions.len();
        while let Some(m) = batch.next().await {
            let m = m.unwrap();
            positions.push(
                message::decode(m.headers.as_ref(), &m.payload)
                    .unwrap()
                    .position,
            );
        }
        if positions.len() == before {
            return positions;
        }
    }
}

/// JetStream holds positions `0..n`, each once, in order; else says where it first differs.
fn assert_once_in_order(positions: &[u64], n: u64, what: &str) {
    if let Some(at) = (0..n as usize).find(|&i| positions.get(i) != Some(&(i as u64))) {
        let around = &positions[at.saturating_sub(3)..(at + 5).min(positions.len())];
        panic!(
            "{what}: {} messages for {n} events; at index {at}: {around:?}",
            positions.len()
        );
    }
    assert_eq!(
        positions.len() as u64,
        n,
        "{what}: more messages than events"
    );
}

/// Every event of `a` and `b`, the same, field by field (positions too: nothing filtered).
fn assert_same(a: &Store, b: &Store) {
    let key = |ev: annals::Result<annals::RecordedEvent>| {
        let ev = ev.unwrap();
        (
            ev.position(),
            ev.stream().to_string(),
            ev.version(),
            ev.event_type().to_string(),
            ev.id(),
            ev.timestamp(),
            ev.payload().to_vec(),
            ev.metadata().to_vec(),
        )
    };
    let (a, b): (Vec<_>, Vec<_>) = (
        a.read_all(0).map(key).collect(),
        b.read_all(0).map(key).collect(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y);
    }
}

fn mirror_into(url: &str, dir: &std::path::Path) -> (Store, annals_nats::MirrorReport) {
    let store = Store::open(dir).unwrap();
    let report = runtime().block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        Mirror::new(store.clone(), client, MirrorOptions::default())
            .catch_up()
            .await
            .unwrap()
    });
    (store, report)
}

#[test]
fn relay_then_mirror_gives_the_same_store_event_by_event() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut server) = NatsServer::start(dir.path()) else {
        return;
    };
    let url = server.url();
    let source = Store::open(dir.path().join("source")).unwrap();
    fill(&source, 0, 3_000);
    let relay_once = |source: &Store| {
        runtime().block_on(async {
            let client = async_nats::connect(&url).await.unwrap();
            let relay = Relay::new(source.clone(), client, RelayOptions::default());
            relay.ensure_stream().await.unwrap();
            relay.catch_up().await.unwrap()
        })
    };
    let report = relay_once(&source);
    assert_eq!((report.published, report.checkpoint), (3_000, 3_000));
    let positions = runtime().block_on(jetstream_positions(&url.clone()));
    assert_once_in_order(&positions, 3_000, "relayed");
    let (mirror, report) = mirror_into(&url.clone(), &dir.path().join("mirror"));
    assert_eq!((report.appended, report.skipped), (3_000, 0));
    assert_same(&source, &mirror);
    drop(mirror);

    // A mirror that died after appending a batch but before recording it gets the batch
    // again: it finds every event in its store and skips them.
    {
        let mirror = Store::open(dir.path().join("mirror")).unwrap();
        mirror.save_checkpoint("nats-mirror", 0).unwrap();
    }
    let (mirror, report) = mirror_into(&url.clone(), &dir.path().join("mirror"));
    assert_eq!((report.appended, report.skipped), (0, 3_000));
    assert_same(&source, &mirror);
    drop(mirror);

    // The server restarts while the relay is idle (it forgets message ids); more events:
    // both resume where they were.
    server.restart();
    fill(&source, 3_000, 4_500);
    assert_eq!(relay_once(&source).published, 1_500);
    assert_eq!(
        relay_once(&source).published,
        0,
        "nothing new, nothing published"
    );
    let (mirror, report) = mirror_into(&url.clone(), &dir.path().join("mirror"));
    assert_eq!(report.appended, 1_500);
    assert_same(&source, &mirror);

    // A following mirror takes new events as they are relayed.
    let rt = runtime();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let following = {
        let (mirror, url) = (mirror.clone(), url.clone());
        rt.spawn(async move {
            let client = async_nats::connect(url).await.unwrap();
            Mirror::new(mirror, client, MirrorOptions::default())
                .run_until(async {
                    let _ = stopped.await;
                })
                .await
        })
    };
    fill(&source, 4_500, 5_000);
    assert_eq!(relay_once(&source).published, 500);
    let started = std::time::Instant::now();
    while mirror.next_position() < 5_000 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the following mirror did not catch up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.send(()).unwrap();
    assert_eq!(rt.block_on(following).unwrap().unwrap().appended, 500);
    assert_same(&source, &mirror);

    // A message the relay did not publish, last in the stream: the relay refuses to go on.
    rt.block_on(async {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        js.publish("annals.intruder", "not an event".into())
            .await
            .unwrap()
            .await
            .unwrap();
        let client = async_nats::connect(&url).await.unwrap();
        fill(&source, 5_000, 5_001);
        let refused = Relay::new(source.clone(), client, RelayOptions::default())
            .catch_up()
            .await;
        assert!(
            matches!(&refused, Err(annals_nats::Error::BadMessage { .. })),
            "{refused:?}"
        );
    });
}

#[test]
fn a_server_killed_in_the_middle_of_a_relay_and_restarted_gets_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut server) = NatsServer::start(dir.path()) else {
        return;
    };
    let source = Store::open(dir.path().join("source")).unwrap();
    fill(&source, 0, 30_000);
    let rt = runtime();
    let url = server.url();
    let relay = rt.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        // One message in flight at a time, so that the relay is still at work when the
        // server goes.
        let options = RelayOptions {
            window: 1,
            ..RelayOptions::default()
        };
        let relay = Relay::new(source.clone(), client, options);
        relay.ensure_stream().await.unwrap();
        relay
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = rt.spawn(async move {
        relay
            .run_until(async {
                let _ = stopped.await;
            })
            .await
    });
    // Kill the server once the relay is under way, keep it down a moment, start it again.
    let started = std::time::Instant::now();
    while source.checkpoint("nats-relay").unwrap().unwrap_or(0) < 1_000
        && started.elapsed() < Duration::from_secs(30)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let at_kill = source.checkpoint("nats-relay").unwrap().unwrap_or(0);
    assert!(
        at_kill < 30_000,
        "the relay finished before the server was killed"
    );
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    // The relay gets through the rest by itself.
    let started = std::time::Instant::now();
    while source.checkpoint("nats-relay").unwrap().unwrap_or(0) < 30_000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the relay did not finish after the restart"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.send(()).unwrap();
    // (Whether it had to start again depends on whether a publish was in flight.)
    let report = rt.block_on(running).unwrap().unwrap();
    assert_eq!(report.checkpoint, 30_000);
    let positions = rt.block_on(jetstream_positions(&server.url()));
    assert_once_in_order(
        &positions,
        30_000,
        "after the server was killed and restarted",
    );
    let (mirror, _) = mirror_into(&server.url(), &dir.path().join("mirror"));
    assert_same(&source, &mirror);
}

const CHILD: &str = "ANNALS_NATS_RELAY_CHILD";

#[test]
fn a_relay_killed_with_sigkill_and_restarted_gets_each_event_once() {
    if let Ok(args) = std::env::var(CHILD) {
        // The child: relay until killed.
        let (dir, url) = args.split_once('\n').unwrap();
        let store = Store::open(dir).unwrap();
        runtime().block_on(async {
            let client = async_nats::connect(url).await.unwrap();
            let relay = Relay::new(store, client, RelayOptions::default());
            relay.ensure_stream().await.unwrap();
            println!("relaying");
            relay.run_until(std::future::pending()).await.unwrap();
        });
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = NatsServer::start(dir.path()) else {
        return;
    };
    let source_dir = dir.path().join("source");
    let total = 30_000;
    fill(&Store::open(&source_dir).unwrap(), 0, total);
    let mut kills = 0;
    for delay in [150u64, 300, 80, 400] {
        let (mut child, lines) = spawn_self(
            "a_relay_killed_with_sigkill_and_restarted_gets_each_event_once",
            CHILD,
            &format!("{}\n{}", source_dir.display(), server.url()),
        );
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the child started relaying");
        std::thread::sleep(Duration::from_millis(delay));
        child.kill_9();
        kills += 1;
    }
    // A last run to the end.
    let source = Store::open(&source_dir).unwrap();
    let checkpoint_before = source.checkpoint("nats-relay").unwrap().unwrap_or(0);
    assert!(checkpoint_before > 0, "the killed relays got somewhere");
    assert!(
        checkpoint_before < total,
        "the relay was killed before it finished"
    );
    runtime().block_on(async {
        let client = async_nats::connect(server.url()).await.unwrap();
        Relay::new(source.clone(), client, RelayOptions::default())
            .catch_up()
            .await
            .unwrap();
    });
    let positions = runtime().block_on(jetstream_positions(&server.url()));
    assert_eq!(
        positions.len() as u64,
        total,
        "after {kills} kills (checkpoint was {checkpoint_before})"
    );
    assert_eq!(
        positions,
        (0..total).collect::<Vec<_>>(),
        "each event once, in order"
    );
    let (mirror, _) = mirror_into(&server.url(), &dir.path().join("mirror"));
    assert_same(&source, &mirror);
}
