//! What can go wrong between a store and NATS.

/// An error of a relay or a mirror.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store failed (its error names what and where).
    #[error("store: {0}")]
    Store(#[from] annals::Error),
    /// A NATS or JetStream request failed.
    #[error("NATS: {what}: {reason}")]
    Nats {
        /// What was being done.
        what: String,
        /// What the client said.
        reason: String,
    },
    /// A message of the JetStream stream is not an annals event.
    #[error("JetStream message {sequence} of stream {stream:?}: {reason}")]
    BadMessage {
        /// The JetStream stream.
        stream: String,
        /// Its sequence number there.
        sequence: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The mirror received an event that differs from the one its store holds at that
    /// stream and version (the source stream was erased and started again, or the mirror's
    /// store was written by something else).
    #[error("event {stream:?}@{version} (source position {position}) differs from the one the mirror holds at that version")]
    Diverged {
        /// The stream.
        stream: String,
        /// The version.
        version: u64,
        /// The event's source position.
        position: u64,
    },
    /// The mirror received an event whose stream lacks the versions before it: the JetStream
    /// stream does not hold every event of the source (it was filtered, or messages were
    /// removed by its limits).
    #[error("event {stream:?}@{version} (source position {position}) arrived, but the mirror holds the stream only up to {held:?}")]
    Gap {
        /// The stream.
        stream: String,
        /// The event's version.
        version: u64,
        /// Its source position.
        position: u64,
        /// The last version the mirror holds.
        held: Option<u64>,
    },
}

/// An async-nats error with what was being done.
pub(crate) fn nats(what: impl Into<String>, e: impl std::fmt::Display) -> Error {
    Error::Nats {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// The result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;
