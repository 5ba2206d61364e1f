//! Commands through cqrs-es's `CqrsFramework` on an annals store against the framework's own
//! in-memory `MemStore`, in the same run, and what loading an aggregate costs with and
//! without a snapshot.
//!
//! `cargo bench -p annals-cqrs --bench commands > /dev/null` (results go to stderr; `MemStore`
//! prints a line to stdout on every load, which is part of its cost).
//!
//! - Commands: 2,000 accounts, each opened then given 9 deposits (20,000 commands), by 1 task
//!   and by 100 concurrent tasks on a 2-thread tokio runtime; annals durable (`Fsync`, each
//!   command's events synced before it returns) and `Buffered`; median of 3 runs.
//! - Loads: one account with 2,050 events, loaded 200 times from all its events and from a
//!   snapshot taken every 100 events; median load time.

#[path = "../demo/bank.rs"]
mod bank;

use std::sync::Arc;
use std::time::{Duration, Instant};

use annals::{Durability, Options, Store};
use annals_cqrs::{annals_cqrs, AnnalsEventStore};
use bank::{BankAccount, BankAccountCommand, BankAccountServices};
use cqrs_es::mem_store::MemStore;
use cqrs_es::{CqrsFramework, EventStore};

const ACCOUNTS: u64 = 2_000;
const DEPOSITS: u64 = 9;

/// Runs every account's commands, `tasks` accounts at a time; returns commands/s.
async fn drive<ES>(cqrs: Arc<CqrsFramework<BankAccount, ES>>, tasks: u64) -> f64
where
    ES: EventStore<BankAccount> + 'static,
    ES::AC: Send,
{
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let cqrs = Arc::clone(&cqrs);
            tokio::spawn(async move {
                for a in (t..ACCOUNTS).step_by(tasks as usize) {
                    let id = format!("a{a}");
                    let open = BankAccountCommand::OpenAccount {
                        account_id: id.clone(),
                    };
                    cqrs.execute(&id, open).await.expect("open");
                    for d in 0..DEPOSITS {
                        cqrs.execute(&id, BankAccountCommand::DepositMoney { amount: d + 1 })
                            .await
                            .expect("deposit");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.await.expect("task");
    }
    (ACCOUNTS * (DEPOSITS + 1)) as f64 / started.elapsed().as_secs_f64()
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks.
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime");
    let base = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
    runtime.block_on(async {
        for tasks in [1u64, 100] {
            let (mut memory, mut durable, mut buffered) = (Vec::new(), Vec::new(), Vec::new());
            for run in 0..3 {
                let mem = CqrsFramework::new(MemStore::<BankAccount>::default(), vec![], BankAccountServices::default());
                memory.push(drive(Arc::new(mem), tasks).await);
                for (durability, rates) in [(Durability::Fsync, &mut durable), (Durability::Buffered, &mut buffered)] {
                    let dir = base.path().join(format!("{tasks}-{run}-{durability:?}"));
                    let store = Store::open_with(&dir, Options::default().durability(durability)).expect("open");
                    let cqrs = annals_cqrs::<BankAccount>(store, vec![], BankAccountServices::default());
                    rates.push(drive(Arc::new(cqrs), tasks).await);
                }
            }
            let show = |v: &[f64]| v.iter().map(|r| format!("{:.0}", r)).collect::<Vec<_>>().join(", ");
            eprintln!(
                "commands/s, {tasks} task(s): MemStore median {:.0} ({}); annals Fsync median {:.0} ({}); annals Buffered median {:.0} ({})",
                median(memory.clone()),
                show(&memory),
                median(durable.clone()),
                show(&durable),
                median(buffered.clone()),
                show(&buffered),
            );
        }

        // Loads of one long-lived account.
        let store = Store::open_with(base.path().join("loads"), Options::default().durability(Durability::Buffered)).expect("open");
        let cqrs = annals_cqrs_snapshots(store.clone());
        cqrs.execute("big", BankAccountCommand::OpenAccount { account_id: "big".into() }).await.expect("open");
        for d in 1..2_050u64 {
            cqrs.execute("big", BankAccountCommand::DepositMoney { amount: d }).await.expect("deposit");
        }
        let full = AnnalsEventStore::<BankAccount>::new(store.clone());
        let snap = AnnalsEventStore::<BankAccount>::new(store.clone()).with_snapshots(100);
        let mut times = (Vec::new(), Vec::new());
        for _ in 0..200 {
            let t = Instant::now();
            let a = full.load_aggregate("big").await.expect("load");
            times.0.push(t.elapsed());
            let t = Instant::now();
            let b = snap.load_aggregate("big").await.expect("load");
            times.1.push(t.elapsed());
            assert_eq!(a.current_sequence(), b.current_sequence());
        }
        let (events_full, events_snap) = (
            full.load_aggregate("big").await.expect("load").events_read(),
            snap.load_aggregate("big").await.expect("load").events_read(),
        );
        let (a, b): (Duration, Duration) = (median(times.0), median(times.1));
        eprintln!(
            "load of an account with 2,050 events: from every event {a:.1?} ({events_full} events read); from its snapshot (every 100) {b:.1?} ({events_snap} read): {:.0}x",
            a.as_secs_f64() / b.as_secs_f64()
        );
    });
}

fn annals_cqrs_snapshots(
    store: Store,
) -> CqrsFramework<BankAccount, AnnalsEventStore<BankAccount>> {
    annals_cqrs::annals_snapshot_cqrs(store, vec![], 100, BankAccountServices::default())
}
