//! A tokio service: requests arrive on a channel, each is handled by its own task, and every
//! task appends with `append_async` — no `spawn_blocking`, no thread per waiting append. The
//! appends in flight share group commits (one `write` and one `fdatasync` for many). A
//! projection task follows the log through the subscription's `Stream` meanwhile.
//!
//! ```text
//! cargo run --release --example service -- [DIR] [--requests N] [--in-flight N]
//! ```
//!
//! `DIR` defaults to `target/example-stores/service` (appended to on every run). Each request
//! places an order of a random customer: `OrderPlaced` to `order-{n}` (a new stream) and
//! `OrderCounted` to `customer-{c}` with the expected version the task read, retried on a
//! conflict (two tasks of one customer racing) the way a command handler would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{Error, EventData, ExpectedVersion, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};

#[derive(Serialize, Deserialize)]
struct OrderPlaced {
    order: u64,
    customer: u64,
    total_cents: u64,
}

#[derive(Serialize, Deserialize)]
struct OrderCounted {
    order: u64,
}

const CUSTOMERS: u64 = 500;

/// One request: the order, then the customer's count, retried on a conflict.
async fn handle(store: Store, order: u64) -> annals::Result<(Duration, u32)> {
    let customer = order.wrapping_mul(2_654_435_761) % CUSTOMERS;
    let placed = OrderPlaced {
        order,
        customer,
        total_cents: 100 + order % 9_000,
    };
    let started = Instant::now();
    store
        .append_async(
            &format!("order-{order}"),
            ExpectedVersion::NoStream,
            [EventData::json("OrderPlaced", &placed)?],
        )
        .await?;
    let stream = format!("customer-{customer}");
    let mut conflicts = 0;
    loop {
        let expected = match store.stream_version(&stream) {
            Some(v) => ExpectedVersion::Exact(v),
            None => ExpectedVersion::NoStream,
        };
        let counted = EventData::json("OrderCounted", &OrderCounted { order })?;
        match store.append_async(&stream, expected, [counted]).await {
            Ok(_) => return Ok((started.elapsed(), conflicts)),
            Err(Error::WrongExpectedVersion { .. }) => conflicts += 1,
            Err(e) => return Err(e),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: u64| -> Result<u64, String> {
        match args.iter().position(|a| a == name) {
            Some(at) => args
                .get(at + 1)
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number")),
            None => Ok(default),
        }
    };
    let (requests, in_flight) = (flag("--requests", 50_000)?, flag("--in-flight", 1_000)?);
    let dir = args.first().filter(|a| !a.starts_with("--")).map_or_else(
        || PathBuf::from("target/example-stores/service"),
        PathBuf::from,
    );
    let store = Store::open(&dir)?;
    let first_order = store.next_position(); // unique order numbers across runs

    // The projection: total of the orders placed, following the log as a Stream.
    let projection = {
        let mut sub = store
            .subscribe_all(store.next_position())
            .event_types(["OrderPlaced"]);
        tokio::spawn(async move {
            let (mut orders, mut cents) = (0u64, 0u64);
            while orders < requests {
                let placed: OrderPlaced = sub.next_async().await?.json()?;
                orders += 1;
                cents += placed.total_cents;
            }
            Ok::<_, Error>((orders, cents))
        })
    };

    // The service loop: a request per message, a task per request, at most `in_flight` at once.
    let (tx, mut rx) = mpsc::channel::<u64>(1_024);
    tokio::spawn(async move {
        for n in 0..requests {
            if tx.send(first_order + n).await.is_err() {
                break;
            }
        }
    });
    let limit = Arc::new(Semaphore::new(in_flight as usize));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests as usize);
    while let Some(order) = rx.recv().await {
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let handled = handle(store, order).await;
            drop(permit);
            handled
        }));
    }
    let (mut latencies, mut conflicts) = (Vec::with_capacity(tasks.len()), 0);
    for task in tasks {
        let (latency, c) = task.await??;
        latencies.push(latency);
        conflicts += c;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    println!(
        "{requests} requests ({} durable appends, {conflicts} conflicts retried) in {elapsed:.2?}: {:.0} appends/s with {in_flight} in flight; request p50 {:.2?}, p99 {:.2?}",
        2 * requests + u64::from(conflicts),
        (2 * requests) as f64 / elapsed.as_secs_f64(),
        at(50),
        at(99)
    );
    let (orders, cents) = tokio::time::timeout(Duration::from_secs(30), projection).await???;
    println!(
        "projection followed live: {orders} orders, {:.2} in total",
        cents as f64 / 100.0
    );
    Ok(())
}
