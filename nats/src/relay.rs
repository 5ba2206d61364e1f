//! [`Relay`]: the log, from a durable checkpoint, to a JetStream stream.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use annals::{RecordedEvent, Store, Subscription};
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};

use crate::error::{nats, Result};
use crate::message;

/// How a [`Relay`] publishes.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Subjects are `{prefix}.{stream}` (default `annals`).
    pub prefix: String,
    /// The JetStream stream, created by [`Relay::ensure_stream`] if missing (default `ANNALS`).
    pub stream: String,
    /// The store's consumer checkpoint the relay resumes from (default `nats-relay`).
    pub checkpoint: String,
    /// Messages published and not yet acknowledged, at most (default 256).
    pub window: usize,
    /// Only these event types (default: all).
    pub event_types: Option<Vec<String>>,
    /// Only this category of streams (default: all).
    pub category: Option<String>,
    /// The duplicate window of a stream [`Relay::ensure_stream`] creates (default 10 minutes):
    /// a relay that restarts within it republishes nothing twice.
    pub duplicate_window: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            prefix: "annals".into(),
            stream: "ANNALS".into(),
            checkpoint: "nats-relay".into(),
            window: 256,
            event_types: None,
            category: None,
            duplicate_window: Duration::from_secs(600),
        }
    }
}

/// What a relay run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Messages JetStream acknowledged (a duplicate it dropped included).
    pub published: u64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// The checkpoint saved last: every event before it is in JetStream.
    pub checkpoint: u64,
    /// Times a failed publish made it start again from the checkpoint.
    pub retries: u64,
}

/// Publishes the store's events to JetStream in position order, from a durable checkpoint,
/// each to `{prefix}.{stream}` with its position, stream, version, type, id, timestamp and
/// metadata in headers (layout in [`message`]) and a `Nats-Msg-Id` that is the same on every
/// retry. Up to `window` messages are in flight; the checkpoint advances only over events
/// JetStream acknowledged, in order, and is saved every 1,000 events, when idle, and when a
/// run returns. A failed publish (the server restarting, say) starts again from the
/// checkpoint after a pause; what was acknowledged already is dropped by JetStream as a
/// duplicate. Restarted at any point within the duplicate window, JetStream ends up with each
/// event once, in position order.
///
/// Works on a read-only handle beside the writing application (it refreshes the handle
/// while following) as well as on the application's own store.
pub struct Relay {
    store: Store,
    js: jetstream::Context,
    options: RelayOptions,
}

impl Relay {
    /// A relay of `store` through `client`.
    pub fn new(store: Store, client: async_nats::Client, options: RelayOptions) -> Self {
        Relay {
            store,
            js: jetstream::new(client),
            options,
        }
    }

    /// Creates the JetStream stream for `{prefix}.>` if it does not exist (file storage, the
    /// options' duplicate window).
    pub async fn ensure_stream(&self) -> Result<()> {
        let config = stream::Config {
            name: self.options.stream.clone(),
            subjects: vec![format!("{}.>", self.options.prefix)],
            duplicate_window: self.options.duplicate_window,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        self.js
            .get_or_create_stream(config)
            .await
            .map_err(|e| nats(format!("create stream {}", self.options.stream), e))?;
        Ok(())
    }

    /// Publishes every event committed after the checkpoint, waits for their
    /// acknowledgements, saves the checkpoint and returns.
    pub async fn catch_up(&self) -> Result<RelayReport> {
        self.run(std::future::pending(), false).await
    }

    /// Catches up, then publishes new events as they are committed, until `stop` completes.
    pub async fn run_until(&self, stop: impl Future<Output = ()>) -> Result<RelayReport> {
        self.run(stop, true).await
    }

    fn subscribe(&self, from: u64) -> Subscription {
        let mut sub = self.store.subscribe_all(from);
        if let Some(types) = &self.options.event_types {
            sub = sub.event_types(types.iter().cloned());
        }
        if let Some(category) = &self.options.category {
            sub = sub.category(category.clone());
        }
        sub
    }

    /// The position of the last event in the JetStream stream, if any.
    async fn last_relayed(&self) -> std::result::Result<Option<u64>, String> {
        let mut stream = self
            .js
            .get_stream(&self.options.stream)
            .await
            .map_err(|e| e.to_string())?;
        let state = stream
            .info()
            .await
            .map_err(|e| e.to_string())?
            .state
            .clone();
        if state.messages == 0 {
            return Ok(None);
        }
        let last = stream
            .get_raw_message(state.last_sequence)
            .await
            .map_err(|e| e.to_string())?;
        let relayed = message::decode(Some(&last.headers), &last.payload).map_err(|reason| {
            format!(
                "the last message ({}) is not a relayed event: {reason}",
                state.last_sequence
            )
        })?;
        Ok(Some(relayed.position))
    }

    /// Publishes `ev`, to be stored only right after the event at `previous` (as the first of
    /// an empty stream for `None`), and queues its acknowledgement.
    async fn send(
        &self,
        ev: &RecordedEvent,
        previous: &mut Option<u64>,
        in_flight: &mut InFlight,
    ) -> Attempt<()> {
        let (subject, headers, payload) = message::encode(&self.options.prefix, ev);
        let publish = PublishMessage::build()
            .payload(payload.into())
            .headers(headers);
        let publish = match *previous {
            Some(p) => {
                publish.expected_last_message_id(message::message_id(&self.options.prefix, p))
            }
            None => publish.expected_last_sequence(0),
        };
        let ack = self
            .js
            .send_publish(subject, publish)
            .await
            .map_err(|_| Retry::Nats)?;
        *previous = Some(ev.position());
        in_flight.push_back((ev.position() + 1, ev.payload().len() as u64, ack));
        Ok(())
    }

    async fn run(&self, stop: impl Future<Output = ()>, follow: bool) -> Result<RelayReport> {
        let mut stop = std::pin::pin!(stop);
        let mut report = RelayReport {
            checkpoint: self
                .store
                .checkpoint(&self.options.checkpoint)?
                .unwrap_or(0),
            ..RelayReport::default()
        };
        let mut saved = report.checkpoint;
        let mut backoff = Duration::from_millis(50);
        loop {
            match self
                .attempt(&mut report, &mut saved, &mut backoff, stop.as_mut(), follow)
                .await
            {
                Ok(()) => return Ok(report),
                Err(Retry::Store(e)) => return Err(e.into()),
                Err(Retry::Nats) => {
                    // Start again from the checkpoint, after a pause, unless asked to stop.
                    report.retries += 1;
                    if !pause(&mut backoff, stop.as_mut()).await {
                        self.save(&mut saved, report.checkpoint)?;
                        return Ok(report);
                    }
                }
            }
        }
    }

    /// One attempt: from the checkpoint until done, stopped, or NATS fails.
    async fn attempt(
        &self,
        report: &mut RelayReport,
        saved: &mut u64,
        backoff: &mut Duration,
        mut stop: Pin<&mut impl Future<Output = ()>>,
        follow: bool,
    ) -> Attempt<()> {
        // Where JetStream is: what it holds past the checkpoint (a run that died before
        // saving) is not published again, and the next message must follow its last.
        let mut previous = self.last_relayed().await.map_err(|_| Retry::Nats)?;
        report.checkpoint = report.checkpoint.max(previous.map_or(0, |p| p + 1));
        let mut sub = self.subscribe(report.checkpoint);
        let mut in_flight = InFlight::new();
        loop {
            while in_flight.len() < self.options.window.max(1) {
                let Some(ev) = sub.try_next()? else { break };
                self.send(&ev, &mut previous, &mut in_flight).await?;
            }
            if let Some((next, bytes, ack)) = in_flight.pop_front() {
                ack.await.map_err(|_| Retry::Nats)?;
                report.published += 1;
                report.bytes += bytes;
                report.checkpoint = next;
                *backoff = Duration::from_millis(50);
                if report.checkpoint - *saved >= 1_000 {
                    self.save(saved, report.checkpoint)?;
                }
                continue;
            }
            // Everything committed so far is in JetStream (filtered events included).
            report.checkpoint = report.checkpoint.max(sub.position());
            self.save(saved, report.checkpoint)?;
            if !follow {
                return Ok(());
            }
            let next = if self.store.is_read_only() {
                tokio::select! {
                    biased;
                    () = stop.as_mut() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_millis(50)) => {
                        self.store.refresh()?;
                        None
                    }
                }
            } else {
                tokio::select! {
                    biased;
                    () = stop.as_mut() => return Ok(()),
                    ev = sub.next_async() => Some(ev?),
                }
            };
            if let Some(ev) = next {
                self.send(&ev, &mut previous, &mut in_flight).await?;
            }
        }
    }

    fn save(&self, saved: &mut u64, checkpoint: u64) -> annals::Result<()> {
        if checkpoint != *saved {
            self.store
                .save_checkpoint(&self.options.checkpoint, checkpoint)?;
            *saved = checkpoint;
        }
        Ok(())
    }
}

/// Published, not yet acknowledged: the position after each, its payload size, its ack.
type InFlight = VecDeque<(u64, u64, PublishAckFuture)>;

/// Why an attempt ended early: NATS failed (start again from the checkpoint), or the store
/// did (give up).
enum Retry {
    Nats,
    Store(annals::Error),
}

impl From<annals::Error> for Retry {
    fn from(e: annals::Error) -> Self {
        Retry::Store(e)
    }
}

type Attempt<T> = std::result::Result<T, Retry>;

/// Waits before starting again from the checkpoint, longer each time (up to 2 s); `false` if
/// `stop` completed meanwhile.
async fn pause(backoff: &mut Duration, stop: Pin<&mut impl Future<Output = ()>>) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(Duration::from_secs(2));
    tokio::select! {
        biased;
        () = stop => false,
        () = tokio::time::sleep(wait) => true,
    }
}
