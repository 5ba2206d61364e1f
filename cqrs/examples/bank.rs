//! cqrs-es's bank-account demo on an embedded annals store: commands through
//! `CqrsFramework::execute`, a balance view fed from the log by a `QueryFeed` that follows
//! commits, all under tokio. The view lives in memory, so it is rebuilt from the log at start
//! (`QueryFeed::rebuild`); a view kept in a database would go on from the feed's durable
//! checkpoint instead. Run it twice: the second run adds accounts and shows them all.
//!
//! ```text
//! cargo run --release -p annals-cqrs --example bank -- [DIR]
//! ```
//!
//! `DIR` defaults to `target/example-stores/bank`.

#[path = "../demo/bank.rs"]
mod bank;

use std::path::PathBuf;

use annals::Store;
use annals_cqrs::{annals_snapshot_cqrs, QueryFeed};
use bank::{BalanceQuery, BankAccount, BankAccountCommand, BankAccountServices};
use cqrs_es::AggregateError;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from("target/example-stores/bank"),
        PathBuf::from,
    );
    let store = Store::open(&dir)?;
    let services = BankAccountServices {
        refused_atms: vec!["atm-closed".into()],
        gate: None,
    };
    // The one line that changes from `postgres_cqrs(pool, queries, services)`; the view is
    // fed by the feed below rather than by the framework.
    let cqrs = annals_snapshot_cqrs::<BankAccount>(store.clone(), vec![], 10, services);

    // The view, fed from the log in the background.
    let view = BalanceQuery::default();
    let feed =
        QueryFeed::<BankAccount>::new(store.clone(), "balance-view", vec![Box::new(view.clone())]);
    feed.rebuild()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let follower = tokio::spawn(async move {
        feed.follow_until(async {
            let _ = stopped.await;
        })
        .await
    });

    let run = store.next_position();
    for n in 0..3 {
        let id = format!("{run}-{n}");
        let open = cqrs
            .execute(
                &id,
                BankAccountCommand::OpenAccount {
                    account_id: id.clone(),
                },
            )
            .await;
        if let Err(e) = open {
            println!("{id}: {e}");
        }
        cqrs.execute(
            &id,
            BankAccountCommand::DepositMoney {
                amount: 10_000 * (n + 1),
            },
        )
        .await?;
        cqrs.execute(
            &id,
            BankAccountCommand::WithdrawMoney {
                amount: 2_000,
                atm_id: "atm-1".into(),
            },
        )
        .await?;
        cqrs.execute(
            &id,
            BankAccountCommand::WriteCheck {
                check_number: format!("{}", 1000 + n),
                amount: 1_550,
            },
        )
        .await?;
        // Refused by the aggregate, and by a service: nothing is written.
        for refused in [
            BankAccountCommand::WithdrawMoney {
                amount: 100_000_000,
                atm_id: "atm-1".into(),
            },
            BankAccountCommand::WithdrawMoney {
                amount: 100,
                atm_id: "atm-closed".into(),
            },
        ] {
            match cqrs.execute(&id, refused).await {
                Err(AggregateError::UserError(e)) => println!("account {id}: refused: {e}"),
                other => println!("account {id}: unexpected: {other:?}"),
            }
        }
    }

    // Stop the feed once it has dispatched every account event committed (snapshot events
    // are not the feed's), then show the view.
    let last = store
        .read_category("account", 0)
        .last()
        .transpose()?
        .map_or(0, |e| e.position() + 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.checkpoint("balance-view")?.unwrap_or(0) < last {
        if std::time::Instant::now() > deadline {
            return Err("the view did not catch up within 30 s".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let _ = stop.send(());
    let dispatched = follower.await??;
    let mut views: Vec<_> = view.views().into_iter().collect();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    for (id, v) in &views {
        println!(
            "account {id:<8} balance {:>9.2}  checks {:?}  ledger {:?}",
            v.balance as f64 / 100.0,
            v.written_checks,
            v.ledger
        );
    }
    println!(
        "{} events in the store; the view handled {dispatched} this run and stands at position {}",
        store.next_position(),
        store.checkpoint("balance-view")?.unwrap_or(0)
    );
    Ok(())
}
