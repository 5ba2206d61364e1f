//! [`erase`]: a stream's events and name leave every file. Appends to the stream fail while
//! it runs; the tail is sealed first if it holds any of its events (only sealed segments are
//! rewritten); the stream is hidden from reads durably (a soft delete) before any file
//! changes; the segments holding its events, found by walking its back pointers, are
//! rewritten oldest first without them (so a crash leaves the newest events, whose chain
//! leads a later run to whatever is left); last, with the writer held, its name leaves the
//! index snapshot and its retention entry goes, and appends to it are let through again.

use std::collections::BTreeSet;
use std::time::Instant;

use super::{EraseReport, Maintainer};
use crate::error::Result;
use crate::format::split_location;
use crate::index::Head;

/// Erases `stream`: see [`Store::erase_stream`](crate::Store::erase_stream).
pub(crate) fn erase(m: &Maintainer, stream: &str) -> Result<EraseReport> {
    let started = Instant::now();
    let head = {
        let mut writer = m.commit.writer();
        let head = m
            .view
            .lookup(stream, |_, found| Ok(found.map(|f| f.head)))?;
        if let Some(head) = head {
            writer.set_erasing(stream, true);
            let tail_seq = m.view.snapshot().segments.last().map(|s| s.seq());
            if Some(split_location(head.last_location).0) == tail_seq {
                if let Err(e) = writer.seal_tail() {
                    writer.set_erasing(stream, false);
                    return Err(e);
                }
            }
        }
        head
    };
    let mut report = EraseReport::default();
    let erased = match head {
        Some(head) => erase_events(m, stream, head, &mut report),
        None => Ok(()),
    };
    // Last, in one hold of the writer (appends to the stream wait for it): its name leaves
    // the index snapshot and its rules go (always: a run after a crash finds no head), and
    // only then may an append start a new stream under the name.
    let mut writer = m.commit.writer();
    let finished = erased.and_then(|()| {
        writer.forget_erased(stream)?;
        match m.retention.own(stream) {
            Some(_) => m.retention.remove(stream),
            None => Ok(()),
        }
    });
    writer.set_erasing(stream, false);
    drop(writer);
    finished?;
    report.duration = started.elapsed();
    Ok(report)
}

/// Hides the stream whose last event is `head`, then rewrites every segment holding its
/// events without them.
fn erase_events(m: &Maintainer, stream: &str, head: Head, report: &mut EraseReport) -> Result<()> {
    m.retention.update(stream, |own| {
        let own = own.unwrap_or_default();
        own.truncate_before(own.truncate_before.unwrap_or(0).max(head.last_version + 1))
    })?;
    let snapshot = m.view.snapshot();
    let mut holding = BTreeSet::new();
    // The chain ends at the stream's first event, or where an earlier compaction or an
    // interrupted erasure removed the ones before.
    snapshot.walk_chain(stream, head.last_location, |_, location| {
        holding.insert(split_location(location).0);
    })?;
    let sealed = m.commit.writer().sealed_segments();
    for segment in sealed.iter().filter(|s| holding.contains(&s.seq())) {
        if let Some(done) = m.replace(segment, |ev| ev.stream == stream)? {
            report.segments_rewritten += 1;
            report.events_removed += done.removed;
            report.bytes_before += done.bytes_before;
            report.bytes_after += done.bytes_after;
        }
    }
    Ok(())
}
