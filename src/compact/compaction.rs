//! [`compact`]: one pass over the sealed segments finds, for each stream with retention
//! rules, the oldest versions that its rules hide (a prefix of the stream: versions below
//! `truncate_before`, beyond `max_count`, and the run of oldest events older than `max_age`),
//! never its last event (so that `stream_version` and the versions of later appends
//! continue); that cut is recorded as the stream's `truncate_before` (durably, before any file
//! changes, so reads never reach a removed event); then each segment holding such events is
//! rewritten without them.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::{CompactReport, Maintainer, Pace};
use crate::error::Result;
use crate::fs::segment::Segment;
use crate::lifecycle::Retention;
use crate::log::scan::walk_frames;

/// What the pass learnt of one stream with rules.
#[derive(Debug)]
struct StreamCut {
    /// The stream's last version when the pass ran.
    last: u64,
    /// Versions below it are hidden by `truncate_before` or `max_count`.
    by_version: u64,
    /// Events stamped before it are hidden by `max_age` (0: no age limit).
    min_timestamp: u64,
    /// Versions below it are the oldest run of events older than `max_age`.
    by_age: u64,
    /// An event of the stream at least as new as `min_timestamp` was seen.
    age_done: bool,
    /// The first version the pass saw.
    first_seen: u64,
}

impl StreamCut {
    /// Versions below this one go: never the last.
    fn cut(&self) -> u64 {
        self.by_version.max(self.by_age).min(self.last)
    }
}

/// Removes from sealed segments what retention rules and soft deletes hide: see
/// [`Store::compact`](crate::Store::compact). Progress counts steps: each segment is read
/// once and maybe rewritten (twice the segments in all).
pub(crate) fn compact(m: &Maintainer, pace: Pace<'_>) -> Result<CompactReport> {
    let started = Instant::now();
    let sealed = m.commit.writer().sealed_segments();
    let total = 2 * sealed.len() as u64;
    let mut cuts: HashMap<String, Option<StreamCut>> = HashMap::new();
    // For each segment, the first version it holds of each stream with rules.
    let mut firsts: Vec<Vec<(String, u64)>> = Vec::with_capacity(sealed.len());
    let mut report = CompactReport {
        segments_read: sealed.len(),
        ..CompactReport::default()
    };
    for (i, segment) in sealed.iter().enumerate() {
        firsts.push(read_segment(m, segment, &mut cuts)?);
        (pace.progress)(i as u64 + 1, total);
        if !(pace.spent)(segment.bytes().len() as u64) {
            report.duration = started.elapsed();
            return Ok(report);
        }
    }
    let cut_of = |stream: &str| {
        cuts.get(stream)
            .and_then(|c| c.as_ref())
            .map_or(0, StreamCut::cut)
    };
    let raised: Vec<(String, u64)> = cuts
        .iter()
        .filter_map(|(name, c)| c.as_ref().map(|c| (name, c)))
        .filter(|(_, c)| c.cut() > c.first_seen)
        .map(|(name, c)| (name.clone(), c.cut()))
        .collect();
    m.retention.raise_truncations(&raised)?;
    for (i, (segment, firsts)) in sealed.iter().zip(&firsts).enumerate() {
        (pace.progress)(sealed.len() as u64 + i as u64 + 1, total);
        if !firsts.iter().any(|(stream, first)| *first < cut_of(stream)) {
            continue;
        }
        if let Some(done) = m.replace(segment, |ev| ev.version < cut_of(ev.stream))? {
            report.segments_rewritten += 1;
            report.events_removed += done.removed;
            report.bytes_before += done.bytes_before;
            report.bytes_after += done.bytes_after;
            if !(pace.spent)(done.bytes_before + done.bytes_after) {
                break;
            }
        }
    }
    report.duration = started.elapsed();
    Ok(report)
}

/// Reads one sealed segment (every frame checked), updating what `cuts` knows of each stream
/// (`None`: a stream without rules); returns the first version of each stream with rules in
/// the segment.
fn read_segment(
    m: &Maintainer,
    segment: &Segment,
    cuts: &mut HashMap<String, Option<StreamCut>>,
) -> Result<Vec<(String, u64)>> {
    let mut firsts: Vec<(String, u64)> = Vec::new();
    let mut in_segment: HashSet<String> = HashSet::new();
    let mut failure = None;
    let walked = walk_frames(segment, segment.base_position(), |ev, _| {
        let cut = match cuts.get_mut(ev.stream) {
            Some(cut) => cut,
            None => {
                let planned = match plan_stream(m, ev.stream, ev.version) {
                    Ok(planned) => planned,
                    Err(e) => {
                        failure.get_or_insert(e);
                        None
                    }
                };
                cuts.entry(ev.stream.to_string()).or_insert(planned)
            }
        };
        let Some(cut) = cut else {
            return Ok(());
        };
        if !cut.age_done {
            match ev.timestamp < cut.min_timestamp {
                true => cut.by_age = ev.version + 1,
                false => cut.age_done = true,
            }
        }
        if !in_segment.contains(ev.stream) {
            in_segment.insert(ev.stream.to_string());
            firsts.push((ev.stream.to_string(), ev.version));
        }
        Ok(())
    })?;
    walked.sealed(segment)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(firsts),
    }
}

/// What the pass starts with for `stream`, first seen at `version`: `None` if no rule
/// applies to it (or it has no events any more).
fn plan_stream(m: &Maintainer, stream: &str, version: u64) -> Result<Option<StreamCut>> {
    let rule = m.retention.get(stream);
    if rule == Retention::default() {
        return Ok(None);
    }
    let last = m
        .view
        .lookup(stream, |_, found| Ok(found.map(|f| f.head.last_version)))?;
    Ok(last.map(|last| StreamCut {
        last,
        by_version: rule.first_visible(last),
        min_timestamp: rule.min_timestamp(),
        by_age: version,
        age_done: rule.max_age.is_none(),
        first_seen: version,
    }))
}
