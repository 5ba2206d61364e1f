//! [`Relay`]: the log, from a durable checkpoint, to a JetStream stream.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use annals::{RecordedEvent, Store, Subscription};
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};

use crate::error::{nats, Error, Result};
use crate::message;

/// How a [`Relay`] publishes.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Subjects are `{prefix}.{stream}` (default `annals`). The subjects under the prefix,
    /// and the JetStream stream, belong to this relay.
    pub prefix: String,
    /// The JetStream stream, created by [`Relay::ensure_stream`] if missing (default `ANNALS`).
    pub stream: String,
    /// The store's consumer checkpoint the relay resumes from (default `nats-relay`).
    pub checkpoint: String,
    /// Messages published and not yet acknowledged, at most (default 256).
    pub window: usize,
    /// Only these event types (default: all). A [`Mirror`](crate::Mirror) of a filtered
    /// relay stops at the first stream whose versions have a gap.
    pub event_types: Option<Vec<String>>,
    /// Only this category of streams (default: all).
    pub category: Option<String>,
    /// The duplicate window of a stream [`Relay::ensure_stream`] creates (default 10
    /// minutes). The relay does not rely on it: it resumes after the last message JetStream
    /// holds.
    pub duplicate_window: Duration,
    /// How often a relay of a read-only handle looks for new events (default 200 ms).
    pub poll_interval: Duration,
    /// Failed attempts in a row after which [`Relay::catch_up`] gives up (default 20; a
    /// following relay keeps trying, and reports each failure in
    /// [`RelayReport::last_error`]).
    pub max_attempts: u32,
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
            poll_interval: Duration::from_millis(200),
            max_attempts: 20,
        }
    }
}

/// What a relay run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayReport {
    /// Messages JetStream acknowledged.
    pub published: u64,
    /// Payload bytes of those messages.
    pub bytes: u64,
    /// The checkpoint saved last: every event before it is in JetStream.
    pub checkpoint: u64,
    /// Times a failure made it start again from what JetStream holds.
    pub retries: u64,
    /// The last failure it started again after, if any.
    pub last_error: Option<String>,
}

/// Publishes the store's events to JetStream in position order, from a durable checkpoint,
/// each to `{prefix}.{stream}` with its position, stream, version, type, id, timestamp and
/// metadata in headers (layout in [`message`]).
///
/// Each attempt starts after the last event the JetStream stream holds (checked against the
/// store) and each message names the stream sequence it must follow
/// (`Nats-Expected-Last-Sequence`), so JetStream refuses a message that would land after a
/// gap (one lost when the server went down) instead of storing it out of order; the relay
/// then starts again. Up to `window` messages are in flight; the checkpoint advances over
/// acknowledged events only and is saved every 1,000 events, when idle, and when a run
/// returns. Restarted at any point, JetStream ends up with each event once, in position
/// order. What cannot succeed by trying again (a message over the server's size limit, a
/// stream whose last message is not this relay's) ends the run with an error.
///
/// Works on a read-only handle beside the writing application (refreshed every
/// `poll_interval` while following) as well as on the application's own store. Under
/// `Durability::Buffered` a power loss may drop events the relay already published; the
/// next run then refuses to go on (JetStream holds a position the store does not).
pub struct Relay {
    store: Store,
    js: jetstream::Context,
    options: RelayOptions,
}

/// Published, not yet acknowledged: the position after each, its payload size, its ack.
type InFlight = VecDeque<(u64, u64, PublishAckFuture)>;

/// Why an attempt ended early.
enum Stop {
    /// NATS failed in a way another attempt may get past.
    Retry(String),
    /// Trying again cannot help.
    Fail(Error),
}

impl From<annals::Error> for Stop {
    fn from(e: annals::Error) -> Self {
        Stop::Fail(e.into())
    }
}

type Attempt<T> = std::result::Result<T, Stop>;

/// Where JetStream is: its last sequence, and the position of the event there.
struct Tip {
    sequence: u64,
    position: Option<u64>,
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
    /// options' duplicate window); fails if a stream of that name exists for other subjects.
    pub async fn ensure_stream(&self) -> Result<()> {
        let subjects = vec![format!("{}.>", self.options.prefix)];
        let config = stream::Config {
            name: self.options.stream.clone(),
            subjects: subjects.clone(),
            duplicate_window: self.options.duplicate_window,
            storage: stream::StorageType::File,
            ..Default::default()
        };
        let mut stream = self
            .js
            .get_or_create_stream(config)
            .await
            .map_err(|e| nats(format!("create stream {}", self.options.stream), e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| nats(format!("stream {}", self.options.stream), e))?;
        if !subjects.iter().all(|s| info.config.subjects.contains(s)) {
            return Err(nats(
                format!("stream {}", self.options.stream),
                format!(
                    "it exists for subjects {:?}, not {subjects:?}",
                    info.config.subjects
                ),
            ));
        }
        Ok(())
    }

    /// Publishes every event committed after the checkpoint, waits for their
    /// acknowledgements, saves the checkpoint and returns; gives up after `max_attempts`
    /// failures in a row.
    pub async fn catch_up(&self) -> Result<RelayReport> {
        self.run(std::future::pending(), false).await
    }

    /// Catches up, then publishes new events as they are committed, until `stop` completes
    /// (checked between messages too, so a long backlog does not hold it up).
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

    /// JetStream's last sequence and the event there, checked to be this relay's and this
    /// store's.
    async fn tip(&self) -> Attempt<Tip> {
        let name = &self.options.stream;
        let retry = |e: &dyn std::fmt::Display| Stop::Retry(format!("stream {name}: {e}"));
        let mut stream = self.js.get_stream(name).await.map_err(|e| retry(&e))?;
        let state = stream.info().await.map_err(|e| retry(&e))?.state.clone();
        let tip = Tip {
            sequence: state.last_sequence,
            position: None,
        };
        if state.messages == 0 {
            return Ok(tip);
        }
        let last = match stream.get_raw_message(state.last_sequence).await {
            Ok(last) => last,
            // Removed meanwhile (limits, a purge): nothing to resume after.
            Err(_) => return Ok(tip),
        };
        let foreign = |reason: String| {
            Stop::Fail(Error::BadMessage {
                stream: name.clone(),
                sequence: state.last_sequence,
                reason,
            })
        };
        let relayed = message::decode(Some(&last.headers), &last.payload)
            .map_err(|r| foreign(format!("the last message is not a relayed event: {r}")))?;
        let id = message::message_id(&self.options.prefix, relayed.position);
        if last.headers.get(message::MSG_ID).map(|v| v.as_str()) != Some(id.as_str()) {
            return Err(foreign(format!(
                "the last message was not published by this relay (prefix {:?})",
                self.options.prefix
            )));
        }
        // It must be this store's event: not one a lost write or an older backup misses.
        let here = self.store.read_all(relayed.position).next().transpose()?;
        match here {
            Some(ev)
                if ev.position() == relayed.position
                    && ev.stream() == relayed.stream
                    && ev.version() == relayed.version => {}
            _ => {
                return Err(foreign(format!(
                    "it holds position {} ({:?}@{}), which this store does not (next position {}): \
                     the store lost events it had published, or is another store",
                    relayed.position,
                    relayed.stream,
                    relayed.version,
                    self.store.next_position()
                )))
            }
        }
        Ok(Tip {
            sequence: state.last_sequence,
            position: Some(relayed.position),
        })
    }

    /// Publishes `ev` to be stored right after sequence `after`, and queues its ack.
    async fn send(
        &self,
        ev: &RecordedEvent,
        after: &mut u64,
        in_flight: &mut InFlight,
    ) -> Attempt<()> {
        let (subject, headers, payload) = message::encode(&self.options.prefix, ev);
        let publish = PublishMessage::build()
            .payload(payload.into())
            .headers(headers)
            .expected_last_sequence(*after);
        let ack = self.js.send_publish(subject, publish).await.map_err(|e| {
            let what = format!(
                "publish position {} ({:?}@{})",
                ev.position(),
                ev.stream(),
                ev.version()
            );
            match e.kind() {
                PublishErrorKind::MaxPayloadExceeded => Stop::Fail(nats(what, e)),
                _ => Stop::Retry(format!("{what}: {e}")),
            }
        })?;
        *after += 1;
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
        let (mut backoff, mut failures) = (Duration::from_millis(50), 0);
        loop {
            let before = report.published;
            let attempt =
                self.attempt(&mut report, &mut saved, &mut backoff, stop.as_mut(), follow);
            match attempt.await {
                Ok(()) => {
                    self.save(&mut saved, report.checkpoint)?;
                    return Ok(report);
                }
                Err(Stop::Fail(e)) => {
                    self.save(&mut saved, report.checkpoint)?;
                    return Err(e);
                }
                Err(Stop::Retry(reason)) => {
                    report.retries += 1;
                    // Failures in a row: an attempt that got something acknowledged starts
                    // the count again.
                    failures = if report.published > before {
                        1
                    } else {
                        failures + 1
                    };
                    if !follow && failures >= self.options.max_attempts.max(1) {
                        self.save(&mut saved, report.checkpoint)?;
                        return Err(nats(
                            format!(
                                "relay to {} ({failures} attempts in a row)",
                                self.options.stream
                            ),
                            reason,
                        ));
                    }
                    report.last_error = Some(reason);
                    if !pause(&mut backoff, stop.as_mut()).await {
                        self.save(&mut saved, report.checkpoint)?;
                        return Ok(report);
                    }
                }
            }
        }
    }

    /// One attempt: from what JetStream holds until done, stopped, or a failure.
    async fn attempt(
        &self,
        report: &mut RelayReport,
        saved: &mut u64,
        backoff: &mut Duration,
        mut stop: Pin<&mut impl Future<Output = ()>>,
        follow: bool,
    ) -> Attempt<()> {
        // What JetStream holds past the checkpoint (a run that died before saving) is not
        // published again, and the next message must follow its last.
        let tip = self.tip().await?;
        let mut after = tip.sequence;
        report.checkpoint = report.checkpoint.max(tip.position.map_or(0, |p| p + 1));
        let mut sub = self.subscribe(report.checkpoint);
        let mut in_flight = InFlight::new();
        loop {
            while in_flight.len() < self.options.window.max(1) {
                let Some(ev) = sub.try_next()? else { break };
                self.send(&ev, &mut after, &mut in_flight).await?;
            }
            if let Some((next, bytes, ack)) = in_flight.pop_front() {
                let acked = tokio::select! {
                    biased;
                    () = stop.as_mut() => return Ok(()),
                    acked = ack => acked,
                };
                acked.map_err(|e| Stop::Retry(format!("position {}: {e}", next - 1)))?;
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
                    () = tokio::time::sleep(self.options.poll_interval) => {
                        let store = self.store.clone();
                        tokio::task::spawn_blocking(move || store.refresh())
                            .await
                            .map_err(|e| Stop::Fail(nats("refresh the store", e)))??;
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
                self.send(&ev, &mut after, &mut in_flight).await?;
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

/// Waits before starting again, longer each time (up to 2 s); `false` if `stop` completed
/// meanwhile.
async fn pause(backoff: &mut Duration, stop: Pin<&mut impl Future<Output = ()>>) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(Duration::from_secs(2));
    tokio::select! {
        biased;
        () = stop => false,
        () = tokio::time::sleep(wait) => true,
    }
}
