//! fjall: a partition keyed by position and one keyed by `(stream, version)`,
//! `PersistMode::SyncData` after each append.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

use crate::engine::{check, encode, err, Engine, Ev, Expected, Peer, Res};

pub const PEER: Peer = Peer {
    name: "fjall",
    settings: "fjall 2, PersistMode::SyncData after each append; partitions events: \
               position (u64 BE) -> event bytes and streams: stream \\0 version (u64 BE) -> \
               position; each append one write batch; no transactions, so the expected-version \
               check reads the last key first (exact only without concurrent writers to a \
               stream, which W2 never has)",
    open,
};

struct Fjall {
    keyspace: Keyspace,
    events: PartitionHandle,
    streams: PartitionHandle,
    next_position: AtomicU64,
}

fn open(dir: &Path, _bulk: bool) -> Res<Box<dyn Engine>> {
    let keyspace = Config::new(dir).open().map_err(err)?;
    let events = keyspace
        .open_partition("events", PartitionCreateOptions::default())
        .map_err(err)?;
    let streams = keyspace
        .open_partition("streams", PartitionCreateOptions::default())
        .map_err(err)?;
    let next = match events.last_key_value().map_err(err)? {
        Some((k, _)) => u64::from_be_bytes(k[..8].try_into().map_err(err)?) + 1,
        None => 0,
    };
    Ok(Box::new(Fjall {
        keyspace,
        events,
        streams,
        next_position: AtomicU64::new(next),
    }))
}

fn stream_key(stream: &str, version: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(stream.len() + 9);
    k.extend_from_slice(stream.as_bytes());
    k.push(0);
    k.extend_from_slice(&version.to_be_bytes());
    k
}

impl Fjall {
    fn write(&self, events: &[Ev], first_version: Option<u64>) -> Res<()> {
        let mut batch = self.keyspace.batch();
        let first = self
            .next_position
            .fetch_add(events.len() as u64, Ordering::SeqCst);
        for (i, ev) in (0u64..).zip(events) {
            let version = first_version.map_or(ev.version, |v| v + i);
            let position = (first + i).to_be_bytes();
            batch.insert(&self.events, position, encode(ev, version));
            batch.insert(&self.streams, stream_key(&ev.stream, version), position);
        }
        batch.commit().map_err(err)?;
        self.keyspace.persist(PersistMode::SyncData).map_err(err)
    }
}

impl Engine for Fjall {
    fn append(&self, stream: &str, expected: Expected, events: &[Ev]) -> Res<()> {
        let mut prefix = stream.as_bytes().to_vec();
        prefix.push(0);
        let last = match self.streams.prefix(&prefix).next_back() {
            Some(kv) => {
                let (k, _) = kv.map_err(err)?;
                Some(u64::from_be_bytes(
                    k[k.len() - 8..].try_into().map_err(err)?,
                ))
            }
            None => None,
        };
        check(stream, expected, last)?;
        self.write(events, Some(last.map_or(0, |v| v + 1)))
    }

    fn load(&self, events: &[Ev]) -> Res<()> {
        self.write(events, None)
    }

    fn replay(&self) -> Res<u64> {
        let mut n = 0;
        for kv in self.events.iter() {
            let (_, v) = kv.map_err(err)?;
            std::hint::black_box(v.len());
            n += 1;
        }
        Ok(n)
    }

    fn read_stream(&self, stream: &str) -> Option<Res<usize>> {
        let run = || -> Res<usize> {
            let mut prefix = stream.as_bytes().to_vec();
            prefix.push(0);
            let mut n = 0;
            for kv in self.streams.prefix(&prefix) {
                let (_, position) = kv.map_err(err)?;
                let ev = self.events.get(position).map_err(err)?;
                std::hint::black_box(ev.map(|e| e.len()));
                n += 1;
            }
            Ok(n)
        };
        Some(run())
    }
}
