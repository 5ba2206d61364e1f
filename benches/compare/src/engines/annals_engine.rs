//! annals, with `Durability::Fsync` (the default).

use std::path::Path;

use annals::{Durability, EventData, ExpectedVersion, Options, Store};

use crate::engine::{err, Engine, Ev, Expected, Peer, Res, EVENT_TYPE};

pub const PEER: Peer = Peer {
    name: "annals",
    settings:
        "default options: Durability::Fsync (fdatasync before an append returns), 256 MiB segments",
    open,
};

struct Annals {
    store: Store,
}

fn open(dir: &Path, bulk: bool) -> Res<Box<dyn Engine>> {
    // annals appends are per stream and bulk loads interleave streams, so a bulk load is one
    // append per event under `Buffered`, synced at the end.
    let durability = if bulk {
        Durability::Buffered
    } else {
        Durability::Fsync
    };
    let store = Store::open_with(dir, Options::default().durability(durability)).map_err(err)?;
    Ok(Box::new(Annals { store }))
}

fn data(ev: &Ev) -> EventData {
    EventData::new(EVENT_TYPE, ev.payload.clone()).id(ev.id)
}

impl Engine for Annals {
    fn append(&self, stream: &str, expected: Expected, events: &[Ev]) -> Res<()> {
        let expected = match expected {
            Expected::Any => ExpectedVersion::Any,
            Expected::Exact(None) => ExpectedVersion::NoStream,
            Expected::Exact(Some(v)) => ExpectedVersion::Exact(v),
        };
        self.store
            .append(stream, expected, events.iter().map(data))
            .map(|_| ())
            .map_err(err)
    }

    fn load(&self, events: &[Ev]) -> Res<()> {
        for ev in events {
            self.store
                .append(&ev.stream, ExpectedVersion::Any, [data(ev)])
                .map_err(err)?;
        }
        self.store.sync().map_err(err)
    }

    fn replay(&self) -> Res<u64> {
        self.store
            .scan_all(0, |_| std::ops::ControlFlow::Continue(()))
            .map_err(err)
    }

    fn read_stream(&self, stream: &str) -> Option<Res<usize>> {
        let mut n = 0;
        for ev in self.store.read_stream(stream, 0) {
            if let Err(e) = ev {
                return Some(Err(err(e)));
            }
            n += 1;
        }
        Some(Ok(n))
    }
}
