//! The JSON Lines format of `dump`, `tail` and `import`: one event a line.
//!
//! ```text
//! {"position":0,"stream":"order-1","version":0,"type":"Placed","id":"00000000-0000-0000-0000-000000001234",
//!  "timestamp":1764547200000000,"time":"2025-12-01T00:00:00Z","payload":{"total":12},"metadata_text":"from web"}
//! ```
//!
//! (one line in the output). `id` is `null` or the 128-bit id as a UUID; `timestamp` is
//! microseconds since the Unix epoch and `time` the same in RFC 3339 (for people; `import`
//! reads `timestamp`). A payload is written as `payload` when it is JSON that reads back to
//! the same bytes (compact JSON, jq sees it as is), as `payload_text` when it is other UTF-8
//! (pretty-printed JSON, text, empty), and as `payload_base64` otherwise; metadata the same
//! way under `metadata…`, left out when empty. `import` turns each back into the exact bytes.

use std::fmt::Write;

use annals::{EventData, RecordedEvent};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One event as a line of JSON (without the newline), written field by field.
pub fn to_line(ev: &RecordedEvent) -> String {
    let mut line = String::with_capacity(192 + ev.payload().len() + ev.metadata().len());
    let _ = write!(line, "{{\"position\":{},\"stream\":", ev.position());
    push_string(&mut line, ev.stream());
    let _ = write!(line, ",\"version\":{},\"type\":", ev.version());
    push_string(&mut line, ev.event_type());
    match ev.id() {
        Some(id) => {
            let _ = write!(line, ",\"id\":\"{}\"", format_id(id));
        }
        None => line.push_str(",\"id\":null"),
    }
    let _ = write!(line, ",\"timestamp\":{}", ev.timestamp());
    if let Some(time) = format_time(ev.timestamp()) {
        let _ = write!(line, ",\"time\":\"{time}\"");
    }
    push_bytes(&mut line, "payload", ev.payload(), true);
    push_bytes(&mut line, "metadata", ev.metadata(), false);
    line.push('}');
    line
}

/// `s` as a JSON string.
fn push_string(line: &mut String, s: &str) {
    line.push_str(&Value::from(s).to_string());
}

/// The event a line describes (for `import`): its stream, version and the event to append.
pub struct Parsed {
    pub stream: String,
    pub version: u64,
    pub event: EventData,
    /// Bytes of payload and metadata.
    pub len: usize,
}

/// Reads one line written by [`to_line`]; the error says which field is wrong.
pub fn parse_line(text: &str) -> Result<Parsed, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(line) = value else {
        return Err("not a JSON object".into());
    };
    let stream = string(&line, "stream")?.ok_or("no \"stream\"")?;
    let event_type = string(&line, "type")?.ok_or("no \"type\"")?;
    let version = number(&line, "version")?.ok_or("no \"version\"")?;
    let payload = take_bytes(&line, "payload")?.unwrap_or_default();
    let mut len = payload.len();
    let mut event = EventData::new(event_type, payload);
    if let Some(metadata) = take_bytes(&line, "metadata")? {
        len += metadata.len();
        event = event.metadata(metadata);
    }
    match line.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) => event = event.id(parse_id(id)?),
        Some(_) => return Err("\"id\" is not a string".into()),
    }
    let timestamp = match number(&line, "timestamp")? {
        Some(t) => Some(t),
        None => string(&line, "time")?.map(|t| parse_time(&t)).transpose()?,
    };
    if let Some(t) = timestamp {
        event = event.timestamp(t);
    }
    Ok(Parsed {
        stream,
        version,
        event,
        len,
    })
}

/// A 128-bit id as a UUID: 8-4-4-4-12 hex digits.
pub fn format_id(id: u128) -> String {
    let h = format!("{id:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn parse_id(id: &str) -> Result<u128, String> {
    let hex: String = id.chars().filter(|&c| c != '-').collect();
    if hex.is_empty() || hex.len() > 32 {
        return Err(format!(
            "\"id\" {id:?} is not a UUID or up to 32 hex digits"
        ));
    }
    u128::from_str_radix(&hex, 16).map_err(|_| format!("\"id\" {id:?} is not hexadecimal"))
}

/// Microseconds since the Unix epoch in RFC 3339 (UTC), `None` past year 9999.
pub fn format_time(micros: u64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
    t.format(&Rfc3339).ok()
}

/// An RFC 3339 time as microseconds since the Unix epoch.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time (like 2026-12-01T09:30:00Z): {e}")
    })?;
    u64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| format!("{text:?} is before 1970"))
}

/// Writes `,"name":bytes` when `bytes` are JSON that reads back to exactly them, else
/// `,"name_text":…` for other UTF-8, else `,"name_base64":…`; nothing for empty bytes unless
/// `always`.
fn push_bytes(line: &mut String, name: &str, bytes: &[u8], always: bool) {
    if bytes.is_empty() && !always {
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if is_exact_json(bytes) => {
            let _ = write!(line, ",\"{name}\":{text}");
        }
        Ok(text) => {
            let _ = write!(line, ",\"{name}_text\":");
            push_string(line, text);
        }
        Err(_) => {
            let _ = write!(line, ",\"{name}_base64\":\"{}\"", BASE64.encode(bytes));
        }
    }
}

/// Deepest nesting of a payload written as JSON: a line nests it one level deeper, and
/// serde_json reads at most 128 levels.
const MAX_DEPTH: usize = 100;

/// Whether `bytes` are JSON that, read and written back, gives exactly `bytes` (and nests
/// shallowly enough for the line to read back).
fn is_exact_json(bytes: &[u8]) -> bool {
    depth(bytes) <= MAX_DEPTH
        && serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|value| serde_json::to_vec(&value).ok())
            .is_some_and(|written| written == bytes)
}

/// The deepest nesting of `[` and `{` outside strings in `bytes`.
fn depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in bytes {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The bytes stored under `name`, `name_text` or `name_base64`, if any.
fn take_bytes(line: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, String> {
    if let Some(value) = line.get(name) {
        return serde_json::to_vec(value)
            .map(Some)
            .map_err(|e| e.to_string());
    }
    if let Some(text) = string(line, &format!("{name}_text"))? {
        return Ok(Some(text.into_bytes()));
    }
    match string(line, &format!("{name}_base64"))? {
        Some(b64) => BASE64
            .decode(b64)
            .map(Some)
            .map_err(|e| format!("\"{name}_base64\" is not base64: {e}")),
        None => Ok(None),
    }
}

fn string(line: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match line.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn number(line: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match line.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("\"{name}\" is not a whole number ≥ 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JSON object holding `bytes` as the payload, as a line writes it, read back.
    fn object_with(bytes: &[u8]) -> Map<String, Value> {
        let mut text = String::from("{\"n\":0");
        push_bytes(&mut text, "payload", bytes, true);
        text.push('}');
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn bytes_choose_the_most_readable_form_that_reads_back_exactly() {
        for (bytes, key) in [
            (&br#"{"b":1,"a":[1.50,"x"]}"#[..], "payload"),
            (b"{\n  \"a\": 1\n}", "payload_text"),
            (b"", "payload_text"),
            (b"plain text", "payload_text"),
            (b"\xff\x00\xfe", "payload_base64"),
        ] {
            let line = object_with(bytes);
            assert!(line.contains_key(key), "{bytes:?} gave {line:?}");
            assert_eq!(take_bytes(&line, "payload").unwrap().unwrap(), bytes);
        }
    }

    #[test]
    fn deeply_nested_json_is_written_as_text_so_that_the_line_reads_back() {
        let deep = format!("{}{}", "[".repeat(127), "]".repeat(127));
        let back = object_with(deep.as_bytes());
        assert!(back.contains_key("payload_text"));
        assert_eq!(
            take_bytes(&back, "payload").unwrap().unwrap(),
            deep.as_bytes()
        );
        assert_eq!(depth(br#"{"a":"[[[\"]]]","b":[{}]}"#), 3);
    }

    #[test]
    fn ids_and_times_round_trip() {
        for id in [0u128, 0x1234, u128::MAX] {
            assert_eq!(parse_id(&format_id(id)).unwrap(), id);
        }
        let t = 1_764_547_200_123_456;
        assert_eq!(parse_time(&format_time(t).unwrap()).unwrap(), t);
        assert!(parse_time("yesterday").is_err());
    }
}
