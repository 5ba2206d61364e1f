//! [`Mirror`]: a JetStream stream of relayed events into a local store.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use annals::{ExpectedVersion, Store};
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::{self, Message};
use futures::StreamExt;

use crate::error::{nats, Error, Result};
use crate::message::{self, Relayed};

/// How a [`Mirror`] consumes.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// The JetStream stream a relay fills (default `ANNALS`).
    pub stream: String,
    /// The checkpoint in the mirror's store that holds the last JetStream sequence it
    /// applied (default `nats-mirror`).
    pub checkpoint: String,
    /// Messages fetched and appended together, at most (default 1,000).
    pub batch: usize,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            stream: "ANNALS".into(),
            checkpoint: "nats-mirror".into(),
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
    /// Messages whose event the store held already (applied by a run that died before
    /// recording it), skipped.
    pub skipped: u64,
    /// The last JetStream sequence applied.
    pub sequence: u64,
}

/// Consumes a JetStream stream that a [`Relay`](crate::Relay) fills into a local store, in
/// stream order: the same streams, versions, ids, timestamps, payloads and metadata as the
/// source — a read replica for projections on another machine.
///
/// The mirror keeps its own place: after each batch is appended and synced, the last
/// JetStream sequence applied is saved as a checkpoint of the mirror's store, and each run
/// reads the stream from the sequence after it (no acknowledgements to lose or reorder). A
/// message applied by a run that died before recording it comes again; its event is found
/// in the store (same stream, version, type, id and timestamp) and skipped, so every event
/// lands once. An event that differs from the one the store holds at its version stops the
/// mirror ([`Error::Diverged`]); one whose stream lacks the versions before it stops it with
/// [`Error::Gap`]. Positions are the mirror's own (they equal the source's when every event
/// is relayed and the source has no holes). Erasures are not relayed.
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

    /// A consumer of the stream from the sequence after the last one applied.
    async fn consumer(&self) -> Result<PullConsumer> {
        let name = &self.options.stream;
        let stream = self
            .js
            .get_stream(name)
            .await
            .map_err(|e| nats(format!("get stream {name}"), e))?;
        let applied = self
            .store
            .checkpoint(&self.options.checkpoint)?
            .unwrap_or(0);
        let config = pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: applied + 1,
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        };
        stream.create_consumer(config).await.map_err(|e| {
            nats(
                format!("consume stream {name} from sequence {}", applied + 1),
                e,
            )
        })
    }

    /// Appends every message the stream holds now, and returns.
    pub async fn catch_up(&self) -> Result<MirrorReport> {
        let consumer = self.consumer().await?;
        let mut report = MirrorReport::default();
        loop {
            let fetched = consumer
                .fetch()
                .max_messages(self.options.batch)
                .messages()
                .await;
            let batch = self.collect(fetched).await?;
            if batch.is_empty() {
                return Ok(report);
            }
            self.apply(batch, &mut report).await?;
        }
    }

    /// Appends messages as they arrive until `stop` completes. A batch being fetched when it
    /// does is dropped unapplied (the next run fetches it again).
    pub async fn run_until(&self, stop: impl Future<Output = ()>) -> Result<MirrorReport> {
        let consumer = self.consumer().await?;
        let mut stop = std::pin::pin!(stop);
        let mut report = MirrorReport::default();
        loop {
            let fetch = async {
                let fetched = consumer
                    .batch()
                    .max_messages(self.options.batch)
                    .expires(Duration::from_millis(500))
                    .messages()
                    .await;
                self.collect(fetched).await
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

    /// The messages of one fetch.
    async fn collect<S, E1, E2>(&self, fetched: std::result::Result<S, E1>) -> Result<Vec<Message>>
    where
        S: futures::Stream<Item = std::result::Result<Message, E2>> + Unpin,
        E1: std::fmt::Display,
        E2: std::fmt::Display,
    {
        let what = || format!("fetch from stream {}", self.options.stream);
        let mut messages = fetched.map_err(|e| nats(what(), e))?;
        let mut batch = Vec::new();
        while let Some(m) = messages.next().await {
            batch.push(m.map_err(|e| nats(what(), e))?);
        }
        Ok(batch)
    }

    /// Whether the store holds `relayed` already at its version (`Err` if it holds another
    /// event there).
    fn holds(&self, relayed: &Relayed) -> Result<bool> {
        let Some(held) = self
            .store
            .read_stream(&relayed.stream, relayed.version)
            .next()
        else {
            return Ok(false);
        };
        let held = held?;
        let same = held.version() == relayed.version
            && held.event_type() == relayed.event.event_type()
            && held.id() == relayed.id
            && held.timestamp() == relayed.timestamp;
        if same {
            Ok(true)
        } else {
            Err(Error::Diverged {
                stream: relayed.stream.clone(),
                version: relayed.version,
                position: relayed.position,
            })
        }
    }

    /// Appends the events of `batch` the store does not hold yet, syncs, and records the
    /// last sequence as applied.
    async fn apply(&self, batch: Vec<Message>, report: &mut MirrorReport) -> Result<()> {
        let mut held: HashMap<String, Option<u64>> = HashMap::new();
        let mut appends = Vec::with_capacity(batch.len());
        let mut last_sequence = report.sequence;
        for m in &batch {
            let sequence = m
                .info()
                .map(|i| i.stream_sequence)
                .map_err(|e| nats("message info", e))?;
            last_sequence = sequence;
            let relayed = message::decode(m.headers.as_ref(), &m.payload).map_err(|reason| {
                Error::BadMessage {
                    stream: self.options.stream.clone(),
                    sequence,
                    reason,
                }
            })?;
            let last = match held.get(&relayed.stream) {
                Some(&last) => last,
                None => self.store.try_stream_version(&relayed.stream)?,
            };
            if last.is_some_and(|v| relayed.version <= v) {
                if self.holds(&relayed)? {
                    report.skipped += 1;
                    continue;
                }
            } else if relayed.version != last.map_or(0, |v| v + 1) {
                return Err(Error::Gap {
                    stream: relayed.stream,
                    version: relayed.version,
                    position: relayed.position,
                    held: last,
                });
            }
            held.insert(relayed.stream.clone(), Some(relayed.version));
            let expected = match relayed.version {
                0 => ExpectedVersion::NoStream,
                v => ExpectedVersion::Exact(v - 1),
            };
            appends.push((relayed.stream, expected, vec![relayed.event]));
        }
        let count = appends.len() as u64;
        let (store, checkpoint) = (self.store.clone(), self.options.checkpoint.clone());
        tokio::task::spawn_blocking(move || -> annals::Result<()> {
            // A failed append (an event over this store's `max_event_size`, say) fails the
            // batch and nothing is recorded; appends of other streams in the batch may have
            // been committed, and the next run finds and skips them. Each stream stays in
            // order; the global order of a failed batch may not.
            for r in store.append_many(appends)? {
                r?;
            }
            store.sync()?;
            store.save_checkpoint(&checkpoint, last_sequence)
        })
        .await
        .map_err(|e| nats("append (the blocking task failed)", e))??;
        report.appended += count;
        report.sequence = last_sequence;
        Ok(())
    }
}
