//! # annals-nats — beyond one machine, through NATS JetStream
//!
//! annals is embedded: one process writes. Read models on other hosts, other services, a
//! standby copy: this crate relays the log to a JetStream stream ([`Relay`]) and mirrors such
//! a stream into a store elsewhere ([`Mirror`]), through an existing replicated log rather
//! than a replication protocol of annals' own.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use annals_nats::{Mirror, MirrorOptions, Relay, RelayOptions};
//!
//! // On the machine that writes: publish every event, from a durable checkpoint.
//! let client = async_nats::connect("nats://127.0.0.1:4222").await?;
//! let relay = Relay::new(annals::Store::open_read_only("./events")?, client.clone(), RelayOptions::default());
//! relay.ensure_stream().await?;
//! relay.catch_up().await?; // or run_until(shutdown) to follow new events
//!
//! // Elsewhere: the same streams, versions, ids and bytes in a store of its own.
//! let mirror = Mirror::new(annals::Store::open("./replica")?, client, MirrorOptions::default());
//! mirror.catch_up().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Guarantees: the relay resumes after the last event JetStream holds (checked to be its own
//! and this store's), each message names the stream sequence it must follow, and the
//! checkpoint advances only over acknowledged events, so a relay or a server restarted at any
//! point leaves each event once in JetStream, in position order. The mirror records the last
//! JetStream sequence it applied in its own store after each durable batch and skips events
//! it holds already, so each event lands once. How a message looks: [`message`].

#![deny(missing_docs)]

mod error;
pub mod message;
mod mirror;
mod relay;

pub use error::{Error, Result};
pub use mirror::{Mirror, MirrorOptions, MirrorReport};
pub use relay::{Relay, RelayOptions, RelayReport};
