//! SQLite through rusqlite (bundled), WAL mode, `synchronous=FULL`.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};
use std::sync::Mutex;

use crate::engine::{check, err, Engine, Ev, Expected, Peer, Res, EVENT_TYPE};

pub const PEER: Peer = Peer {
    name: "SQLite",
    settings: "rusqlite 0.32 (bundled SQLite), journal_mode=WAL, synchronous=FULL; table \
               events(position INTEGER PRIMARY KEY, stream TEXT, version INTEGER, id BLOB, \
               type TEXT, ts INTEGER, payload BLOB, UNIQUE(stream, version)); one transaction \
               per append, the expected-version check inside it; one connection behind a mutex",
    open,
};

struct Sqlite {
    conn: Mutex<Connection>,
}

fn open(dir: &Path, _bulk: bool) -> Res<Box<dyn Engine>> {
    std::fs::create_dir_all(dir).map_err(err)?;
    let conn = Connection::open(dir.join("events.db")).map_err(err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(err)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS events(position INTEGER PRIMARY KEY, stream TEXT NOT NULL, \
         version INTEGER NOT NULL, id BLOB, type TEXT NOT NULL, ts INTEGER NOT NULL, \
         payload BLOB NOT NULL, UNIQUE(stream, version))",
    )
    .map_err(err)?;
    Ok(Box::new(Sqlite {
        conn: Mutex::new(conn),
    }))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn insert(tx: &rusqlite::Transaction<'_>, ev: &Ev, version: u64) -> Res<()> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT INTO events(stream, version, id, type, ts, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(err)?;
    stmt.execute(params![
        ev.stream,
        version as i64,
        ev.id.to_le_bytes().to_vec(),
        EVENT_TYPE,
        now(),
        ev.payload
    ])
    .map_err(err)?;
    Ok(())
}

impl Engine for Sqlite {
    fn append(&self, stream: &str, expected: Expected, events: &[Ev]) -> Res<()> {
        let mut conn = self.conn.lock().map_err(err)?;
        let tx = conn.transaction().map_err(err)?;
        let last: Option<i64> = tx
            .query_row(
                "SELECT max(version) FROM events WHERE stream = ?1",
                [stream],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
            .flatten();
        let last = last.map(|v| v as u64);
        check(stream, expected, last)?;
        for (version, ev) in (last.map_or(0, |v| v + 1)..).zip(events) {
            insert(&tx, ev, version)?;
        }
        tx.commit().map_err(err)
    }

    fn load(&self, events: &[Ev]) -> Res<()> {
        let mut conn = self.conn.lock().map_err(err)?;
        let tx = conn.transaction().map_err(err)?;
        for ev in events {
            insert(&tx, ev, ev.version)?;
        }
        tx.commit().map_err(err)
    }

    fn replay(&self) -> Res<u64> {
        let conn = self.conn.lock().map_err(err)?;
        let mut stmt = conn
            .prepare("SELECT position, stream, version, id, type, ts, payload FROM events ORDER BY position")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(err)? {
            let payload: Vec<u8> = row.get(6).map_err(err)?;
            std::hint::black_box(payload);
            n += 1;
        }
        Ok(n)
    }

    fn read_stream(&self, stream: &str) -> Option<Res<usize>> {
        let run = || -> Res<usize> {
            let conn = self.conn.lock().map_err(err)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT position, version, id, type, ts, payload FROM events WHERE stream = ?1 ORDER BY version",
                )
                .map_err(err)?;
            let mut rows = stmt.query([stream]).map_err(err)?;
            let mut n = 0;
            while let Some(row) = rows.next().map_err(err)? {
                let payload: Vec<u8> = row.get(5).map_err(err)?;
                std::hint::black_box(payload);
                n += 1;
            }
            Ok(n)
        };
        Some(run())
    }
}
