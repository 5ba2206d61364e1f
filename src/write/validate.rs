//! Checking an append before it joins a batch: names, sizes, ids, and the length of its frame;
//! and the idempotency rule an append's ids are judged by.

use crate::error::{Error, Result};
use crate::event::{AppendResult, EventData, ExpectedVersion};
use crate::format::{record_len, FRAME_HEADER_LEN, MAX_FRAME_LEN, MAX_NAME_LEN};

/// One append waiting for group commit: validated, not yet checked against the log.
#[derive(Debug)]
pub(crate) struct Request {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<EventData>,
    /// From [`validate`].
    pub frame_len: usize,
}

/// Checks an append against the rules of the API and returns the length of its frame.
pub(crate) fn validate(stream: &str, events: &[EventData], max_event_size: usize) -> Result<usize> {
    check_name("stream name", stream)?;
    if events.is_empty() {
        return Err(Error::InvalidInput(format!(
            "append to stream {stream:?} has no events"
        )));
    }
    let mut ids: Vec<u128> = events.iter().filter_map(|ev| ev.id).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(Error::InvalidInput(format!(
            "event id {:#034x} appears twice in one append to {stream:?}",
            pair[0]
        )));
    }
    let mut frame_len = FRAME_HEADER_LEN;
    for (i, ev) in events.iter().enumerate() {
        check_name("event type", &ev.event_type)?;
        let size = ev.payload.len() + ev.metadata.len();
        if size > max_event_size {
            return Err(Error::InvalidInput(format!(
                "event {i} of the append to {stream:?} has {size} bytes of payload and metadata, \
                 more than max_event_size ({max_event_size})"
            )));
        }
        frame_len += record_len(
            stream.len(),
            ev.event_type.len(),
            ev.metadata.len(),
            ev.payload.len(),
            ev.id.is_some(),
        );
        if frame_len > MAX_FRAME_LEN {
            return Err(Error::InvalidInput(format!(
                "append to {stream:?} needs more than {MAX_FRAME_LEN} bytes; split it"
            )));
        }
    }
    Ok(frame_len)
}

pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::InvalidInput(format!(
            "{what} {name:?} must have 1 to {MAX_NAME_LEN} bytes, it has {}",
            name.len()
        )));
    }
    Ok(())
}

/// If every event of the append carries an id that `stream` holds already (`held` gives its
/// position and version), in the same order, the original positions and versions; if only
/// some do, [`Error::DuplicateEvent`]; if none does, `None`.
pub(crate) fn deduplicate(
    stream: &str,
    events: &[EventData],
    held: impl Fn(u128) -> Result<Option<(u64, u64)>>,
) -> Result<Option<AppendResult>> {
    let mut count = 0;
    let mut first: Option<(u128, u64, u64)> = None;
    let mut last: Option<(u64, u64)> = None;
    let mut in_order = true;
    for id in events.iter().filter_map(|ev| ev.id) {
        let Some((position, version)) = held(id)? else {
            continue;
        };
        count += 1;
        first.get_or_insert((id, position, version));
        if let Some((_, last_version)) = last {
            in_order &= version == last_version + 1;
        }
        last = Some((position, version));
    }
    match (first, last) {
        (Some((_, first_position, first_version)), Some((last_position, last_version)))
            if count == events.len() && in_order =>
        {
            Ok(Some(AppendResult {
                first_position,
                last_position,
                first_version,
                last_version,
                deduplicated: true,
            }))
        }
        (Some((id, _, _)), _) => Err(Error::DuplicateEvent {
            stream: stream.to_string(),
            id,
        }),
        _ => Ok(None),
    }
}
