//! [`replay_partitioned`]: one pass over the log feeds `workers` threads; the events of one key
//! go to one worker, in position order. The reading thread verifies every frame and record,
//! computes each event's key and hands the worker the event's place in the mapped segments
//! (in batches, through a bounded queue, so memory stays flat); the worker decodes the record
//! in place and calls the handler with the zero-copy [`EventRef`].

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::mpsc::sync_channel;

use super::ReadAll;
use crate::error::{Error, Result};
use crate::event::EventRef;
use crate::format::decode_record;

/// Events handed to a worker at a time.
const BATCH: usize = 1024;
/// Batches waiting for each worker before the reader waits for it.
const QUEUED: usize = 8;

/// Hands every event `read` yields to `handler` on one of `workers` threads, chosen by the
/// hash of `key(event)`; returns how many were handled. See
/// [`Store::replay_partitioned`](crate::Store::replay_partitioned).
pub(crate) fn replay_partitioned<K: Hash>(
    mut read: ReadAll,
    workers: usize,
    key: impl Fn(&EventRef<'_>) -> K,
    handler: impl Fn(usize, &EventRef<'_>) + Sync,
) -> Result<u64> {
    if workers == 0 {
        return Err(Error::InvalidInput(
            "replay_partitioned needs at least one worker".into(),
        ));
    }
    let snapshot = read.snapshot().clone();
    std::thread::scope(|scope| {
        let mut queues = Vec::with_capacity(workers);
        for worker in 0..workers {
            let (send, receive) = sync_channel::<Vec<(usize, usize)>>(QUEUED);
            let (snapshot, handler) = (&snapshot, &handler);
            scope.spawn(move || {
                for batch in receive {
                    for (segment, offset) in batch {
                        // The reader verified this record: it decodes, in place.
                        let bytes = snapshot.segments[segment].bytes().get(offset..);
                        if let Some(Ok((view, _))) = bytes.map(|b| decode_record(b, false)) {
                            handler(worker, &EventRef(view));
                        }
                    }
                }
            });
            queues.push((send, Vec::with_capacity(BATCH)));
        }
        let mut handled = 0;
        let read_all = loop {
            let (view, place) = match read.next_located() {
                None => break Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(found)) => found,
            };
            let mut hasher = DefaultHasher::new();
            key(&EventRef(view)).hash(&mut hasher);
            let (queue, batch) = &mut queues[(hasher.finish() % workers as u64) as usize];
            batch.push(place);
            handled += 1;
            if batch.len() == BATCH && queue.send(std::mem::take(batch)).is_err() {
                // The worker is gone (its handler panicked): the scope reports it.
                break Ok(());
            }
        };
        for (queue, batch) in queues {
            if !batch.is_empty() {
                let _ = queue.send(batch);
            }
        }
        read_all.map(|()| handled)
    })
}
