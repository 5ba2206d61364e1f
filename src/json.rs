//! Typed events (feature `serde`): an event's payload as the JSON of a serde value, with
//! errors naming the event.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::event::{EventData, EventRef, RecordedEvent};

impl EventData {
    /// An event of type `event_type` whose payload is `value` as JSON (serde_json).
    /// [`Error::Json`] naming the type if `value` cannot be serialized (a map with non-string
    /// keys, say, or a `Serialize` impl that fails).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// use annals::{EventData, ExpectedVersion, Store};
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct OrderPlaced { order: u64, total_cents: u64 }
    ///
    /// let store = Store::open(dir.path())?;
    /// let placed = OrderPlaced { order: 42, total_cents: 1250 };
    /// store.append("order-42", ExpectedVersion::NoStream, [EventData::json("OrderPlaced", &placed)?])?;
    /// let ev = store.read_stream("order-42", 0).next().transpose()?.expect("one event");
    /// assert_eq!(ev.json::<OrderPlaced>()?, placed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn json<T: Serialize + ?Sized>(event_type: impl Into<String>, value: &T) -> Result<Self> {
        let event_type = event_type.into();
        match serde_json::to_vec(value) {
            Ok(payload) => Ok(EventData::new(event_type, payload)),
            Err(e) => Err(Error::Json {
                event: format!("a new {event_type:?} event"),
                reason: e.to_string(),
            }),
        }
    }
}

impl RecordedEvent {
    /// The payload read as JSON into a `T` (serde_json). [`Error::Json`] naming the event's
    /// type, position, stream and version, with serde_json's reason (the line and column
    /// included), if it is not the JSON of a `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        from_json(self.payload(), || {
            describe(
                self.event_type(),
                self.position(),
                self.stream(),
                self.version(),
            )
        })
    }
}

impl EventRef<'_> {
    /// The payload read as JSON into a `T`: see [`RecordedEvent::json`].
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        from_json(self.payload(), || {
            describe(
                self.event_type(),
                self.position(),
                self.stream(),
                self.version(),
            )
        })
    }
}

fn describe(event_type: &str, position: u64, stream: &str, version: u64) -> String {
    format!(
        "the {event_type:?} event at position {position} (stream {stream:?}, version {version})"
    )
}

fn from_json<T: DeserializeOwned>(payload: &[u8], event: impl FnOnce() -> String) -> Result<T> {
    serde_json::from_slice(payload).map_err(|e| Error::Json {
        event: event(),
        reason: e.to_string(),
    })
}
