//! redb: a table keyed by position and a `(stream, version) -> position` table,
//! `Durability::Immediate`.

use std::path::Path;

use redb::{Database, Durability, ReadableTable, TableDefinition};

use crate::engine::{check, encode, err, Engine, Ev, Expected, Peer, Res};

pub const PEER: Peer = Peer {
    name: "redb",
    settings: "redb 2, Durability::Immediate; tables events: u64 position -> event bytes and \
               streams: (stream, version) -> position; one write transaction per append with \
               the expected-version check in it",
    open,
};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const STREAMS: TableDefinition<(&str, u64), u64> = TableDefinition::new("streams");

struct Redb {
    db: Database,
}

fn open(dir: &Path, _bulk: bool) -> Res<Box<dyn Engine>> {
    std::fs::create_dir_all(dir).map_err(err)?;
    let db = Database::create(dir.join("events.redb")).map_err(err)?;
    let tx = db.begin_write().map_err(err)?;
    tx.open_table(EVENTS).map_err(err)?;
    tx.open_table(STREAMS).map_err(err)?;
    tx.commit().map_err(err)?;
    Ok(Box::new(Redb { db }))
}

impl Redb {
    /// One durable transaction writing `events`; `version` gives each event's version.
    fn write(
        &self,
        events: &[Ev],
        mut version: impl FnMut(&redb::Table<(&str, u64), u64>, &Ev) -> Res<u64>,
    ) -> Res<()> {
        let mut tx = self.db.begin_write().map_err(err)?;
        tx.set_durability(Durability::Immediate);
        {
            let mut table = tx.open_table(EVENTS).map_err(err)?;
            let mut streams = tx.open_table(STREAMS).map_err(err)?;
            let first = match table.last().map_err(err)? {
                Some((k, _)) => k.value() + 1,
                None => 0,
            };
            for (position, ev) in (first..).zip(events) {
                let v = version(&streams, ev)?;
                table
                    .insert(position, encode(ev, v).as_slice())
                    .map_err(err)?;
                streams
                    .insert((ev.stream.as_str(), v), position)
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}

fn last_version(streams: &redb::Table<(&str, u64), u64>, stream: &str) -> Res<Option<u64>> {
    let last = streams
        .range((stream, 0)..=(stream, u64::MAX))
        .map_err(err)?
        .next_back()
        .transpose()
        .map_err(err)?;
    Ok(last.map(|(k, _)| k.value().1))
}

impl Engine for Redb {
    fn append(&self, stream: &str, expected: Expected, events: &[Ev]) -> Res<()> {
        let mut next = None;
        self.write(events, |streams, _| {
            let v = match next {
                Some(v) => v,
                None => {
                    let last = last_version(streams, stream)?;
                    check(stream, expected, last)?;
                    last.map_or(0, |v| v + 1)
                }
            };
            next = Some(v + 1);
            Ok(v)
        })
    }

    fn load(&self, events: &[Ev]) -> Res<()> {
        self.write(events, |_, ev| Ok(ev.version))
    }

    fn replay(&self) -> Res<u64> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(EVENTS).map_err(err)?;
        let mut n = 0;
        for row in table.iter().map_err(err)? {
            let (_, v) = row.map_err(err)?;
            std::hint::black_box(v.value());
            n += 1;
        }
        Ok(n)
    }

    fn read_stream(&self, stream: &str) -> Option<Res<usize>> {
        let run = || -> Res<usize> {
            let tx = self.db.begin_read().map_err(err)?;
            let streams = tx.open_table(STREAMS).map_err(err)?;
            let events = tx.open_table(EVENTS).map_err(err)?;
            let mut n = 0;
            for row in streams
                .range((stream, 0)..=(stream, u64::MAX))
                .map_err(err)?
            {
                let (_, position) = row.map_err(err)?;
                let ev = events.get(position.value()).map_err(err)?;
                std::hint::black_box(ev.map(|e| e.value().len()));
                n += 1;
            }
            Ok(n)
        };
        Some(run())
    }
}
