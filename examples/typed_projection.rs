//! Typed events (feature `serde`): each event type a Rust struct, appended with
//! `EventData::json` and read back with `RecordedEvent::json`, so no handler parses bytes by
//! hand. A balance-per-account projection follows the log from a durable checkpoint; an
//! event whose payload does not fit its type is reported with where it lies, and skipped.
//!
//! ```text
//! cargo run --release --example typed_projection -- [DIR]
//! ```
//!
//! `DIR` defaults to `target/example-stores/typed-projection`; each run appends a few more
//! events and the projection continues from its checkpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;

use annals::{EventData, ExpectedVersion, RecordedEvent, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct AccountOpened {
    owner: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Deposited {
    cents: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Withdrawn {
    cents: i64,
    reason: Option<String>,
}

const CHECKPOINT: &str = "balances";

/// The projection: balance per account, and the events it could not read.
#[derive(Default)]
struct Balances {
    by_account: BTreeMap<String, (String, i64)>,
    unreadable: u64,
}

impl Balances {
    fn apply(&mut self, ev: &RecordedEvent) -> annals::Result<()> {
        let account = ev.stream().to_string();
        match ev.event_type() {
            "AccountOpened" => {
                let opened: AccountOpened = ev.json()?;
                self.by_account.insert(account, (opened.owner, 0));
            }
            "Deposited" => self.entry(account).1 += ev.json::<Deposited>()?.cents,
            "Withdrawn" => self.entry(account).1 -= ev.json::<Withdrawn>()?.cents,
            _ => {}
        }
        Ok(())
    }

    fn entry(&mut self, account: String) -> &mut (String, i64) {
        self.by_account.entry(account).or_default()
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from("target/example-stores/typed-projection"),
        PathBuf::from,
    );
    let store = Store::open(&dir)?;

    // The write side: typed events in, JSON payloads stored.
    let run = store.next_position();
    for n in 0..5u64 {
        let account = format!("account-{run}-{n}");
        store.append(
            &account,
            ExpectedVersion::NoStream,
            [
                EventData::json(
                    "AccountOpened",
                    &AccountOpened {
                        owner: format!("owner {n}"),
                    },
                )?,
                EventData::json(
                    "Deposited",
                    &Deposited {
                        cents: 10_000 * (n as i64 + 1),
                    },
                )?,
                EventData::json(
                    "Withdrawn",
                    &Withdrawn {
                        cents: 2_500,
                        reason: Some("rent".into()),
                    },
                )?,
            ],
        )?;
    }
    // An event an old client wrote with the amount as a string: the projection reports it.
    store.append(
        &format!("account-{run}-0"),
        ExpectedVersion::Any,
        [EventData::new(
            "Deposited",
            br#"{"cents":"12.50"}"#.to_vec(),
        )],
    )?;

    // The read side: from the checkpoint (the projection's state would be loaded with it in
    // a real application; here it is rebuilt from the start of this run's events).
    let from = store.checkpoint(CHECKPOINT)?.unwrap_or(0);
    let mut balances = Balances::default();
    let mut sub = store.subscribe_all(from);
    while let Some(ev) = sub.try_next()? {
        if let Err(e) = balances.apply(&ev) {
            eprintln!("skipped: {e}");
            balances.unreadable += 1;
        }
    }
    store.save_checkpoint(CHECKPOINT, sub.position())?;
    for (account, (owner, cents)) in &balances.by_account {
        println!("{account:<16} {owner:<10} {:>10.2}", *cents as f64 / 100.0);
    }
    println!(
        "{} events read from position {from}, {} unreadable; checkpoint saved at {}",
        sub.position() - from,
        balances.unreadable,
        sub.position()
    );
    Ok(())
}
