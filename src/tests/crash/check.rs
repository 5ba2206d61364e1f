//! Checking one crash state: the store opens, and holds what the workload says it must.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::{EventData, ExpectedVersion, RecordedEvent, Store};

use super::draw::Case;
use super::workloads::{decode, event_id, payload, temp_dir, Workload, CONSUMER};

/// Payload of the event appended after recovery.
pub(super) const AFTER: &[u8] = b"appended after recovery";

/// What opening a crash state did, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Recovery {
    /// Opening cut a torn tail.
    pub(super) cut: bool,
    /// Index side files rebuilt while opening.
    pub(super) rebuilt: usize,
    /// Events the store held.
    pub(super) events: u64,
    /// Opening used an index snapshot.
    pub(super) snapshot: bool,
}

/// Writes the state of `case` into a fresh directory, opens the store there and checks it
/// (and, if `append_after`, appends, reopens and checks again). `Err` says what is wrong.
pub(super) fn check(w: &Workload, case: &Case, append_after: bool) -> Result<Recovery, String> {
    let dir = temp_dir();
    case.state
        .write_to(dir.path())
        .map_err(|e| format!("cannot write the state: {e}"))?;
    let store =
        Store::open_with(dir.path(), w.options.clone()).map_err(|e| format!("open failed: {e}"))?;
    let report = store.open_report();
    let recovery = Recovery {
        cut: report.cut.is_some(),
        rebuilt: report.rebuilt_indexes.len(),
        events: report.events,
        snapshot: report.snapshot_position.is_some(),
    };
    let events = read_all(&store)?;
    let present = check_log(w, &events)?;
    check_acknowledged(w, case.k, &present)?;
    check_checkpoint(w, case.k, &store)?;
    if append_after {
        check_append_after(w, dir.path(), store, events.len() as u64)?;
    }
    Ok(recovery)
}

/// Every event of the store, in position order.
pub(super) fn read_all(store: &Store) -> Result<Vec<RecordedEvent>, String> {
    store
        .read_all(0)
        .collect::<crate::Result<Vec<_>>>()
        .map_err(|e| format!("read_all failed: {e}"))
}

/// Checks positions, versions and events, and that every append present is whole and
/// present once. Returns the appends present.
pub(super) fn check_log(w: &Workload, events: &[RecordedEvent]) -> Result<HashSet<u64>, String> {
    check_dense(events)?;
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for ev in events {
        let next = versions.entry(ev.stream()).or_insert(0);
        if ev.version() != *next {
            return Err(format!(
                "position {}: version {} of stream {}, where {next} was expected",
                ev.position(),
                ev.version(),
                ev.stream()
            ));
        }
        *next += 1;
    }
    let mut present = HashSet::new();
    let mut at = 0;
    while at < events.len() {
        let (append, count) = check_append(w, &events[at..])?;
        if !present.insert(append) {
            return Err(format!(
                "append {append} appears twice (again at position {at})"
            ));
        }
        at += count as usize;
    }
    Ok(present)
}

/// Checks that positions are dense from 0.
pub(super) fn check_dense(events: &[RecordedEvent]) -> Result<(), String> {
    match (0u64..).zip(events).find(|(p, ev)| ev.position() != *p) {
        Some((p, ev)) => Err(format!("position {} where {p} was expected", ev.position())),
        None => Ok(()),
    }
}

/// Checks that `events` start with a whole append; returns its id and event count.
pub(super) fn check_append(w: &Workload, events: &[RecordedEvent]) -> Result<(u64, u64), String> {
    let first = &events[0];
    let (append, index, count) = check_event(w, first)?;
    if index != 0 {
        return Err(format!(
            "position {}: event {index} of append {append} without the events before it",
            first.position()
        ));
    }
    if events.len() < count as usize {
        return Err(format!(
            "append {append} has {} of its {count} events (from position {})",
            events.len(),
            first.position()
        ));
    }
    for (i, ev) in (0..count).zip(events) {
        let found = check_event(w, ev)?;
        if found != (append, i, count) {
            return Err(format!(
                "position {}: event {found:?} (append, index, count) inside append {append} \
                 of {count} events",
                ev.position()
            ));
        }
    }
    Ok((append, count))
}

/// Checks that `ev` is an event that was appended, byte for byte; returns its (append id,
/// index, count).
pub(super) fn check_event(w: &Workload, ev: &RecordedEvent) -> Result<(u64, u64, u64), String> {
    let at = ev.position();
    let (append, index, count) = decode(ev.payload())
        .ok_or_else(|| format!("position {at}: payload of {} bytes", ev.payload().len()))?;
    let spec = w
        .appends
        .get(&append)
        .ok_or_else(|| format!("position {at}: event of unknown append {append}"))?;
    if count != spec.count || index >= count {
        return Err(format!(
            "position {at}: event {index} of {count} of append {append}, which had {}",
            spec.count
        ));
    }
    if ev.payload() != payload(append, index, count).as_slice() {
        return Err(format!(
            "position {at}: payload bytes of append {append} differ"
        ));
    }
    if ev.stream() != spec.stream {
        return Err(format!(
            "position {at}: append {append} in stream {}, not {}",
            ev.stream(),
            spec.stream
        ));
    }
    let id = spec.with_ids.then(|| event_id(append, index));
    if ev.id() != id {
        return Err(format!("position {at}: id {:?}, not {id:?}", ev.id()));
    }
    Ok((append, index, count))
}

/// Checks that every append acknowledged before operation `k` is present.
pub(super) fn check_acknowledged(
    w: &Workload,
    k: usize,
    present: &HashSet<u64>,
) -> Result<(), String> {
    match w
        .acks
        .iter()
        .find(|&&(op, append)| op < k && !present.contains(&append))
    {
        Some((op, append)) => Err(format!(
            "append {append}, acknowledged at op {op}, is missing ({} appends present)",
            present.len()
        )),
        None => Ok(()),
    }
}

/// Checks the checkpoint: readable, one that was saved, no older than the last one
/// acknowledged before operation `k`, and missing only if none was.
pub(super) fn check_checkpoint(w: &Workload, k: usize, store: &Store) -> Result<(), String> {
    let found = store
        .checkpoint(CONSUMER)
        .map_err(|e| format!("checkpoint({CONSUMER:?}) failed: {e}"))?;
    let acknowledged = w
        .ckpts
        .iter()
        .rev()
        .find(|(op, _)| *op < k)
        .map(|&(_, p)| p);
    match (found, acknowledged) {
        (None, None) => Ok(()),
        (None, Some(last)) => Err(format!("checkpoint missing; {last} was saved")),
        (Some(p), _) if !w.saved.contains(&p) => Err(format!("checkpoint {p} was never saved")),
        (Some(p), Some(last)) if p < last => Err(format!(
            "checkpoint {p}, older than {last}, which was saved"
        )),
        (Some(_), _) => Ok(()),
    }
}

/// Appends one event to the recovered store, reopens it and checks the event is there,
/// after the `events` recovered, with positions still dense.
pub(super) fn check_append_after(
    w: &Workload,
    dir: &Path,
    store: Store,
    events: u64,
) -> Result<(), String> {
    store
        .append("after", ExpectedVersion::Any, [EventData::new("E", AFTER)])
        .map_err(|e| format!("append after recovery failed: {e}"))?;
    drop(store);
    let store = Store::open_with(dir, w.options.clone())
        .map_err(|e| format!("reopen after an append failed: {e}"))?;
    let all = read_all(&store)?;
    check_dense(&all)?;
    match all.last() {
        Some(ev) if all.len() as u64 == events + 1 && ev.payload() == AFTER => Ok(()),
        _ => Err(format!(
            "after one append and a reopen: {} events, not {} ending with the new one",
            all.len(),
            events + 1
        )),
    }
}
