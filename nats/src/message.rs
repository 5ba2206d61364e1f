//! How an annals event travels as a JetStream message.
//!
//! - Subject: `{prefix}.{stream}`, the stream name percent-encoded where a subject cannot hold
//!   it (every byte but ASCII letters, digits, `-` and `_`: `.` would split it into tokens,
//!   `*`, `>` and spaces are not allowed), so each stream has its own subject.
//! - Body: the payload, as stored.
//! - Headers: `Annals-Position`, `Annals-Stream` (the name, percent-encoded the same way),
//!   `Annals-Version`, `Annals-Type` (percent-encoded too), `Annals-Timestamp` (µs since the epoch), `Annals-Id`
//!   (32 hex digits, when the event has an id), `Annals-Metadata` (hex, when there is any),
//!   and `Nats-Msg-Id` = `{prefix}:{position}`: the same on every retry, and how a relay knows
//!   the last message of a stream is its own.
//! - `Nats-Expected-Last-Sequence`: the stream sequence it must follow, so JetStream refuses a
//!   message that would land after a gap: a message lost when the server went down is never
//!   overtaken by the ones sent after it.

use annals::{EventData, RecordedEvent};
use async_nats::HeaderMap;

/// The header names.
pub const POSITION: &str = "Annals-Position";
/// See [`POSITION`].
pub const STREAM: &str = "Annals-Stream";
/// See [`POSITION`].
pub const VERSION: &str = "Annals-Version";
/// See [`POSITION`].
pub const TYPE: &str = "Annals-Type";
/// See [`POSITION`].
pub const TIMESTAMP: &str = "Annals-Timestamp";
/// See [`POSITION`].
pub const ID: &str = "Annals-Id";
/// See [`POSITION`].
pub const METADATA: &str = "Annals-Metadata";
/// JetStream's deduplication header.
pub const MSG_ID: &str = "Nats-Msg-Id";

/// An event decoded from a message: where it was in the source, and the event to append.
#[derive(Debug)]
pub struct Relayed {
    /// Its position in the source store.
    pub position: u64,
    /// Its stream.
    pub stream: String,
    /// Its version in that stream.
    pub version: u64,
    /// Its id, if it has one.
    pub id: Option<u128>,
    /// Its timestamp (µs since the epoch).
    pub timestamp: u64,
    /// The event: type, payload, metadata, id and timestamp as they were.
    pub event: EventData,
}

/// `name` with every byte a subject token cannot hold as `%XX`.
pub fn encode_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The name [`encode_name`] encoded.
pub fn decode_name(encoded: &str) -> Result<String, String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = encoded
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("a cut escape in {encoded:?}"))?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| format!("a bad escape in {encoded:?}"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{encoded:?} is not UTF-8 once decoded"))
}

/// The `Nats-Msg-Id` of the event at `position`.
pub fn message_id(prefix: &str, position: u64) -> String {
    format!("{prefix}:{position}")
}

/// The subject of `stream`'s events.
pub fn subject(prefix: &str, stream: &str) -> String {
    format!("{prefix}.{}", encode_name(stream))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd hex length {}", text.len()));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("not hex at {i}"))
        })
        .collect()
}

/// The subject, headers and body of `ev`'s message.
pub fn encode(prefix: &str, ev: &RecordedEvent) -> (String, HeaderMap, Vec<u8>) {
    let mut headers = HeaderMap::new();
    let position = ev.position().to_string();
    headers.insert(MSG_ID, message_id(prefix, ev.position()).as_str());
    headers.insert(POSITION, position.as_str());
    headers.insert(STREAM, encode_name(ev.stream()).as_str());
    headers.insert(VERSION, ev.version().to_string().as_str());
    headers.insert(TYPE, encode_name(ev.event_type()).as_str());
    headers.insert(TIMESTAMP, ev.timestamp().to_string().as_str());
    if let Some(id) = ev.id() {
        headers.insert(ID, format!("{id:032x}").as_str());
    }
    if !ev.metadata().is_empty() {
        headers.insert(METADATA, hex(ev.metadata()).as_str());
    }
    (subject(prefix, ev.stream()), headers, ev.payload().to_vec())
}

/// The event a message carries; an error naming what is missing or malformed.
pub fn decode(headers: Option<&HeaderMap>, payload: &[u8]) -> Result<Relayed, String> {
    let headers = headers.ok_or("a message without headers")?;
    let get = |name: &str| -> Result<&str, String> {
        headers
            .get(name)
            .map(|v| v.as_str())
            .ok_or_else(|| format!("no {name} header"))
    };
    let number = |name: &str| -> Result<u64, String> {
        get(name)?
            .parse()
            .map_err(|_| format!("{name} is not a number"))
    };
    let timestamp = number(TIMESTAMP)?;
    let mut event = EventData::new(decode_name(get(TYPE)?)?, payload.to_vec()).timestamp(timestamp);
    let id = match headers.get(ID) {
        Some(id) => {
            Some(u128::from_str_radix(id.as_str(), 16).map_err(|_| format!("{ID} is not hex"))?)
        }
        None => None,
    };
    if let Some(id) = id {
        event = event.id(id);
    }
    if let Some(metadata) = headers.get(METADATA) {
        event = event.metadata(unhex(metadata.as_str())?);
    }
    Ok(Relayed {
        position: number(POSITION)?,
        stream: decode_name(get(STREAM)?)?,
        version: number(VERSION)?,
        id,
        timestamp,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_survive_the_subject_encoding() {
        for name in ["order-42", "a.b c*>%", "ünï", "x_y-Z9", ""] {
            let encoded = encode_name(name);
            assert!(
                encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_%".contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode_name(&encoded).unwrap(), name);
        }
        assert!(decode_name("%4").is_err());
        assert!(decode_name("%zz").is_err());
        assert_eq!(unhex(&hex(&[0, 1, 254, 255])).unwrap(), [0, 1, 254, 255]);
        assert!(unhex("abc").is_err());
    }
}
