//! The values that go into and come out of a store: [`EventData`], [`RecordedEvent`],
//! [`ExpectedVersion`] and [`AppendResult`].

use std::fmt;

use crate::format::RecordView;

/// One event to append: a type, an opaque payload, and optionally metadata, an id and a
/// timestamp.
///
/// ```
/// use annals::EventData;
///
/// let ev = EventData::new("OrderPlaced", br#"{"total":12}"#.to_vec())
///     .id(0x1234)
///     .metadata(b"trace=abc".to_vec());
/// assert_eq!(ev.event_type(), "OrderPlaced");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventData {
    pub(crate) event_type: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) metadata: Vec<u8>,
    pub(crate) id: Option<u128>,
    pub(crate) timestamp: Option<u64>,
}

impl EventData {
    /// An event of type `event_type` (non-empty, at most 255 bytes; a `&str` of any lifetime
    /// or a `String`) carrying `payload`.
    ///
    /// ```
    /// use annals::EventData;
    ///
    /// fn ev(event_type: &str, payload: &[u8]) -> EventData {
    ///     EventData::new(event_type, payload.to_vec())
    /// }
    /// let name = String::from("Enrolled");
    /// assert_eq!(ev(&name, b"{}").event_type(), "Enrolled");
    /// assert_eq!(EventData::new(name, vec![]).event_type(), "Enrolled");
    /// ```
    #[must_use]
    pub fn new(event_type: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        EventData {
            event_type: event_type.into(),
            payload: payload.into(),
            metadata: Vec::new(),
            id: None,
            timestamp: None,
        }
    }

    /// Gives the event an id (for example a UUID's 128 bits), which makes appending it again
    /// to the same stream a no-op.
    #[must_use]
    pub fn id(mut self, id: u128) -> Self {
        self.id = Some(id);
        self
    }

    /// Attaches opaque metadata (correlation ids, causation, schema version, ...).
    #[must_use]
    pub fn metadata(mut self, metadata: impl Into<Vec<u8>>) -> Self {
        self.metadata = metadata.into();
        self
    }

    /// Keeps the given timestamp (microseconds since the Unix epoch) instead of the time of the
    /// append, for imports and migrations.
    #[must_use]
    pub fn timestamp(mut self, micros: u64) -> Self {
        self.timestamp = Some(micros);
        self
    }

    /// The event's type.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The event's payload.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }
}

/// What an append expects of the stream's last version; checked atomically with the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must have no events.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last version must be exactly this one.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `actual` satisfies this expectation.
    pub fn is_satisfied_by(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "last version {v}"),
        }
    }
}

/// Where the events of one append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AppendResult {
    /// Global position of the first event written.
    pub first_position: u64,
    /// Global position of the last event written.
    pub last_position: u64,
    /// Stream version of the first event written.
    pub first_version: u64,
    /// Stream version of the last event written.
    pub last_version: u64,
    /// True when nothing was written because the events were stored already.
    pub deduplicated: bool,
}

/// An event read back from the store. Owns its bytes (one allocation per event).
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    position: u64,
    version: u64,
    timestamp: u64,
    id: Option<u128>,
    stream_len: u8,
    type_len: u8,
    metadata_len: u32,
    /// Stream name, event type, metadata and payload, back to back.
    bytes: Box<[u8]>,
}

impl RecordedEvent {
    /// Copies a record decoded from the log.
    pub(crate) fn from_view(view: &RecordView<'_>) -> Self {
        let stream = view.stream.as_bytes();
        let event_type = view.event_type.as_bytes();
        let mut bytes = Vec::with_capacity(
            stream.len() + event_type.len() + view.metadata.len() + view.payload.len(),
        );
        bytes.extend_from_slice(stream);
        bytes.extend_from_slice(event_type);
        bytes.extend_from_slice(view.metadata);
        bytes.extend_from_slice(view.payload);
        RecordedEvent {
            position: view.position,
            version: view.version,
            timestamp: view.timestamp,
            id: view.id,
            // The format stores both lengths in one byte each.
            stream_len: stream.len() as u8,
            type_len: event_type.len() as u8,
            metadata_len: view.metadata.len() as u32,
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// This event with the type, payload and metadata of `data` (an upcaster's output);
    /// position, stream, version, id and timestamp stay.
    pub(crate) fn reshaped(&self, data: &EventData) -> Self {
        let stream = self.stream().as_bytes();
        let mut bytes = Vec::with_capacity(
            stream.len() + data.event_type.len() + data.metadata.len() + data.payload.len(),
        );
        bytes.extend_from_slice(stream);
        bytes.extend_from_slice(data.event_type.as_bytes());
        bytes.extend_from_slice(&data.metadata);
        bytes.extend_from_slice(&data.payload);
        RecordedEvent {
            position: self.position,
            version: self.version,
            timestamp: self.timestamp,
            id: self.id,
            stream_len: self.stream_len,
            type_len: data.event_type.len() as u8,
            metadata_len: data.metadata.len() as u32,
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// Global position: dense over the whole store, starting at 0, in commit order.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Version within its stream: dense, starting at 0.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Microseconds since the Unix epoch, assigned at append (or given by the appender).
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The id the appender gave the event, if any.
    pub fn id(&self) -> Option<u128> {
        self.id
    }

    /// The name of the event's stream.
    pub fn stream(&self) -> &str {
        let end = usize::from(self.stream_len);
        // The bytes were validated as UTF-8 when decoded; the fallback is never taken.
        std::str::from_utf8(&self.bytes[..end]).unwrap_or_default()
    }

    /// The event's type.
    pub fn event_type(&self) -> &str {
        let start = usize::from(self.stream_len);
        let end = start + usize::from(self.type_len);
        std::str::from_utf8(&self.bytes[start..end]).unwrap_or_default()
    }

    /// The event's metadata (empty if none was given).
    pub fn metadata(&self) -> &[u8] {
        let start = usize::from(self.stream_len) + usize::from(self.type_len);
        &self.bytes[start..start + self.metadata_len as usize]
    }

    /// The event's payload.
    pub fn payload(&self) -> &[u8] {
        let start =
            usize::from(self.stream_len) + usize::from(self.type_len) + self.metadata_len as usize;
        &self.bytes[start..]
    }
}

impl fmt::Debug for RecordedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordedEvent")
            .field("position", &self.position)
            .field("stream", &self.stream())
            .field("version", &self.version)
            .field("event_type", &self.event_type())
            .field("id", &self.id)
            .field("timestamp", &self.timestamp)
            .field("metadata_len", &self.metadata().len())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}

/// An event decoded in place in the mapped log: nothing copied, nothing allocated. Handed to
/// the callback of [`Store::scan_all`](crate::Store::scan_all), and valid during the call;
/// [`EventRef::to_owned`] keeps a copy.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a>(pub(crate) RecordView<'a>);

impl<'a> EventRef<'a> {
    /// Global position.
    pub fn position(&self) -> u64 {
        self.0.position
    }

    /// Version within its stream.
    pub fn version(&self) -> u64 {
        self.0.version
    }

    /// Microseconds since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.0.timestamp
    }

    /// The event's id, if any.
    pub fn id(&self) -> Option<u128> {
        self.0.id
    }

    /// The name of the event's stream.
    pub fn stream(&self) -> &'a str {
        self.0.stream
    }

    /// The event's type.
    pub fn event_type(&self) -> &'a str {
        self.0.event_type
    }

    /// The event's metadata.
    pub fn metadata(&self) -> &'a [u8] {
        self.0.metadata
    }

    /// The event's payload.
    pub fn payload(&self) -> &'a [u8] {
        self.0.payload
    }

    /// An owned copy.
    pub fn to_owned(&self) -> RecordedEvent {
        RecordedEvent::from_view(&self.0)
    }
}

impl fmt::Debug for EventRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRef")
            .field("position", &self.position())
            .field("stream", &self.stream())
            .field("version", &self.version())
            .field("event_type", &self.event_type())
            .field("id", &self.id())
            .field("timestamp", &self.timestamp())
            .field("payload_len", &self.payload().len())
            .finish()
    }
}
