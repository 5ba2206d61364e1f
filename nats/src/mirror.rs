//! [`Mirror`]: a JetStream stream of relayed events into a local store.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use annals::{ExpectedVersion, Store};
use async_nats::jetstream::consumer::{pull, AckPolicy, PullConsumer};
use async_nats::jetstream::{self, Message};
use futures::StreamExt;

use crate::error::{nats, Error, Result};
use crate::message::{self, Relayed};

/// How a [`Mirror`] consumes.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// The JetStream stream a relay fills (default `ANNALS`).
    pub stream: String,
    /// The durable consumer that remembers how far the mirror got (default `annals-mirror`).
    pub consumer: String,
    /// Messages fetched and appended together, at most (default 1,000).
    pub batch: usize,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            stream: "ANNALS".into(),
            consumer: "annals-mirror".into(),
            batch: 1_000,
        }
    }
}

/// What a mirror run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MirrorReport {
    /// Events appended to the local store.
    pub appended: u64,
    /// Messages whose event the store held already (delivered again), skipped.
    pub skipped: u64,
}

/// Consumes a JetStream stream that a [`Relay`](crate::Relay) fills into a local store, in
/// order, with a durable consumer: the same streams, versions, ids, timestamps, payloads and
/// metadata as the source — a read replica for projections on another machine. Each batch is
/// appended (`append_many`, durable under the store's durability) before it is acknowledged;
/// a message delivered again (its acknowledgement lost in a crash) is recognised by its
/// version and skipped, so every event lands once. Positions are the mirror's own (they equal
/// the source's when every event is relayed and the source has no holes).
pub struct Mirror {
    store: Store,
    js: jetstream::Context,
    options: MirrorOptions,
}

impl Mirror {
    /// A mirror into `store` (writable) through `client`.
    pub fn new(store: Store, client: async_nats::Client, options: MirrorOptions) -> Self {
        Mirror {
            store,
            js: jetstream::new(client),
            options,
        }
    }

    async fn consumer(&self) -> Result<PullConsumer> {
        let stream = self
            .js
            .get_stream(&self.options.stream)
            .await
            .map_err(|e| nats(format!("get stream {}", self.options.stream), e))?;
        let config = pull::Config {
            durable_name: Some(self.options.consumer.clone()),
            ack_policy: AckPolicy::All,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&self.options.consumer, config)
            .await
            .map_err(|e| nats(format!("consumer {}", self.options.consumer), e))
    }

    /// Appends every message the stream holds for this consumer now, and returns.
    pub async fn catch_up(&self) -> Result<MirrorReport> {
        let consumer = self.consumer().await?;
        let mut report = MirrorReport::default();
        loop {
            let mut messages = consumer
                .fetch()
                .max_messages(self.options.batch)
                .messages()
                .await
                .map_err(|e| nats("fetch", e))?;
            let mut batch = Vec::new();
            while let Some(m) = messages.next().await {
                batch.push(m.map_err(|e| nats("fetch", e))?);
            }
            if batch.is_empty() {
                return Ok(report);
            }
            self.apply(batch, &mut report).await?;
        }
    }

    /// Appends messages as they arrive until `stop` completes.
    pub async fn run_until(&self, stop: impl Future<Output = ()>) -> Result<MirrorReport> {
        let consumer = self.consumer().await?;
        let mut stop = std::pin::pin!(stop);
        let mut report = MirrorReport::default();
        loop {
            let fetch = async {
                let mut messages = consumer
                    .batch()
                    .max_messages(self.options.batch)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await
                    .map_err(|e| nats("fetch", e))?;
                let mut batch = Vec::new();
                while let Some(m) = messages.next().await {
                    batch.push(m.map_err(|e| nats("fetch", e))?);
                }
                Ok::<_, Error>(batch)
            };
            let batch = tokio::select! {
                biased;
                () = stop.as_mut() => return Ok(report),
                batch = fetch => batch?,
            };
            if !batch.is_empty() {
                self.apply(batch, &mut report).await?;
            }
        }
    }

    /// Appends the events of `batch` the store does not hold yet, then acknowledges it.
    async fn apply(&self, batch: Vec<Message>, report: &mut MirrorReport) -> Result<()> {
        let mut held: HashMap<String, Option<u64>> = HashMap::new();
        let mut appends = Vec::with_capacity(batch.len());
        for m in &batch {
            let sequence = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            let Relayed {
                position,
                stream,
                version,
                event,
            } = message::decode(m.headers.as_ref(), &m.payload).map_err(|reason| {
                Error::BadMessage {
                    stream: self.options.stream.clone(),
                    sequence,
                    reason,
                }
            })?;
            let last = *held
                .entry(stream.clone())
                .or_insert_with(|| self.store.stream_version(&stream));
            match last {
                Some(v) if version <= v => {
                    report.skipped += 1;
                    continue;
                }
                _ if version != last.map_or(0, |v| v + 1) => {
                    return Err(Error::Gap {
                        stream,
                        version,
                        position,
                        held: last,
                    })
                }
                _ => {}
            }
            held.insert(stream.clone(), Some(version));
            let expected = match version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v - 1),
            };
            appends.push((stream, expected, vec![event]));
        }
        let count = appends.len() as u64;
        if count > 0 {
            let store = self.store.clone();
            let results = tokio::task::spawn_blocking(move || -> annals::Result<()> {
                for r in store.append_many(appends)? {
                    r?;
                }
                store.sync()
            })
            .await
            .map_err(|e| nats("append", e))?;
            results?;
        }
        report.appended += count;
        if let Some(last) = batch.last() {
            last.ack().await.map_err(|e| nats("ack", e))?;
        }
        Ok(())
    }
}
