//! [`position_at`]: where in the log a point in time is.

use super::ReadAll;
use crate::error::Result;
use crate::log::Snapshot;

/// The first position of `snapshot` whose event has a timestamp at or after `time`
/// (microseconds since the Unix epoch), or its end if none does; see
/// [`Store::position_at`](crate::Store::position_at). A binary search over the segments'
/// first events, then a walk through one segment.
pub(crate) fn position_at(snapshot: &Snapshot, time: u64) -> Result<u64> {
    // The timestamp of the first event at or after the start of segment `i`, if any.
    let first_time = |i: usize| -> Result<Option<u64>> {
        let mut read = ReadAll::new(snapshot.clone(), snapshot.segments[i].base_position());
        read.next_view().transpose().map(|v| v.map(|v| v.timestamp))
    };
    // The last segment whose first event is older than `time`: the answer is in it, or is
    // the first event after it.
    let (mut lo, mut hi) = (0, snapshot.segments.len());
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        match first_time(mid)? {
            Some(t) if t < time => lo = mid,
            _ => hi = mid,
        }
    }
    let mut read = ReadAll::new(snapshot.clone(), snapshot.segments[lo].base_position());
    while let Some(view) = read.next_view() {
        let view = view?;
        if view.timestamp >= time {
            return Ok(view.position);
        }
    }
    Ok(snapshot.next_position)
}
