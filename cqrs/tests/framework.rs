//! cqrs-es itself (`CqrsFramework::execute` with real commands) on an annals store: events
//! persisted and reloaded, concurrency conflicts, snapshots, queries fed from a checkpointed
//! subscription, and the same behaviour as the framework's in-memory store.

#[path = "../demo/bank.rs"]
mod bank;

use std::collections::HashMap;
use std::sync::Arc;

use annals::{EventData, ExpectedVersion, Store};
use annals_cqrs::{annals_cqrs, annals_snapshot_cqrs, AnnalsEventStore, QueryFeed};
use bank::{
    BalanceQuery, BankAccount, BankAccountCommand as Cmd, BankAccountEvent as Ev,
    BankAccountServices,
};
use cqrs_es::mem_store::MemStore;
use cqrs_es::{AggregateContext, AggregateError, CqrsFramework, EventStore};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn open(id: &str) -> Cmd {
    Cmd::OpenAccount {
        account_id: id.to_string(),
    }
}

fn deposit(amount: u64) -> Cmd {
    Cmd::DepositMoney { amount }
}

#[test]
fn events_are_persisted_with_metadata_and_reloaded_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let cqrs =
            annals_cqrs::<BankAccount>(store.clone(), vec![], BankAccountServices::default());
        cqrs.execute("acc-1", open("acc-1")).await.unwrap();
        let metadata = HashMap::from([("user".to_string(), "alice".to_string())]);
        cqrs.execute_with_metadata("acc-1", deposit(1_000), metadata.clone())
            .await
            .unwrap();
        cqrs.execute(
            "acc-1",
            Cmd::WithdrawMoney {
                amount: 300,
                atm_id: "atm-7".into(),
            },
        )
        .await
        .unwrap();
        cqrs.execute(
            "acc-1",
            Cmd::WriteCheck {
                check_number: "1170".into(),
                amount: 200,
            },
        )
        .await
        .unwrap();
        // A command the aggregate refuses writes nothing.
        let refused = cqrs
            .execute(
                "acc-1",
                Cmd::WithdrawMoney {
                    amount: 10_000,
                    atm_id: "atm-7".into(),
                },
            )
            .await;
        assert!(
            matches!(refused, Err(AggregateError::UserError(e)) if e.0 == "funds not available")
        );
        // The store holds the stream the layout promises, readable without the framework.
        assert_eq!(store.stream_version("account-acc-1"), Some(3));
        let types: Vec<String> = store
            .read_category("account", 0)
            .map(|ev| ev.unwrap().event_type().to_string())
            .collect();
        assert_eq!(
            types,
            [
                "AccountOpened",
                "CustomerDepositedMoney",
                "CustomerWithdrewCash",
                "CustomerWroteCheck"
            ]
        );
        drop(cqrs);
        drop(store);

        let es = AnnalsEventStore::<BankAccount>::new(Store::open(dir.path()).unwrap());
        let events = es.load_events("acc-1").await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            events[1].payload,
            Ev::CustomerDepositedMoney {
                amount: 1_000,
                balance: 1_000
            }
        );
        assert_eq!(events[1].metadata, metadata);
        assert!(events[0].metadata.is_empty());
        assert!(events.iter().all(|e| e.aggregate_id == "acc-1"));
        let mut context = es.load_aggregate("acc-1").await.unwrap();
        assert_eq!(context.current_sequence(), 4);
        let account = context.aggregate();
        assert_eq!(
            (account.balance, account.transactions, account.opened),
            (500, 4, true)
        );
        // An aggregate never written loads as new.
        assert_eq!(
            es.load_aggregate("nobody")
                .await
                .unwrap()
                .current_sequence(),
            0
        );
    });
}

#[test]
fn two_commands_racing_on_one_aggregate_give_the_frameworks_conflict() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        annals_cqrs::<BankAccount>(store.clone(), vec![], BankAccountServices::default())
            .execute("acc-1", open("acc-1"))
            .await
            .unwrap();
        // Both commands load the aggregate, then wait for each other before either commits.
        let services = BankAccountServices {
            gate: Some(Arc::new(tokio::sync::Barrier::new(2))),
            ..Default::default()
        };
        let cqrs = Arc::new(annals_cqrs::<BankAccount>(store.clone(), vec![], services));
        let (a, b) = tokio::join!(
            {
                let cqrs = Arc::clone(&cqrs);
                async move { cqrs.execute("acc-1", deposit(10)).await }
            },
            {
                let cqrs = Arc::clone(&cqrs);
                async move { cqrs.execute("acc-1", deposit(20)).await }
            },
        );
        let results = [a, b];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(AggregateError::AggregateConflict))),
            "{results:?}"
        );
        // Exactly one deposit is stored.
        assert_eq!(store.stream_version("account-acc-1"), Some(1));
    });
}

#[test]
fn snapshots_are_used_and_load_the_same_state_as_every_event() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let cqrs = annals_snapshot_cqrs::<BankAccount>(
            store.clone(),
            vec![],
            5,
            BankAccountServices::default(),
        );
        cqrs.execute("acc-1", open("acc-1")).await.unwrap();
        for n in 1..=23 {
            cqrs.execute("acc-1", deposit(n)).await.unwrap();
        }
        // 24 events: snapshots after 5, 10, 15 and 20; loading reads the last four only.
        assert_eq!(store.stream_version("account.snapshot-acc-1"), Some(3));
        let with = AnnalsEventStore::<BankAccount>::new(store.clone()).with_snapshots(5);
        let mut snap = with.load_aggregate("acc-1").await.unwrap();
        assert_eq!(
            (
                snap.snapshot_sequence(),
                snap.events_read(),
                snap.current_sequence()
            ),
            (20, 4, 24)
        );
        let mut full = AnnalsEventStore::<BankAccount>::new(store.clone())
            .load_aggregate("acc-1")
            .await
            .unwrap();
        assert_eq!((full.events_read(), full.current_sequence()), (24, 24));
        assert_eq!(snap.aggregate(), full.aggregate());
        assert_eq!(full.aggregate().balance, (1..=23).sum::<u64>());
        // Commands go on from the snapshot.
        cqrs.execute(
            "acc-1",
            Cmd::WithdrawMoney {
                amount: 6,
                atm_id: "a".into(),
            },
        )
        .await
        .unwrap();
        let mut after = with.load_aggregate("acc-1").await.unwrap();
        assert_eq!(
            (after.current_sequence(), after.aggregate().balance),
            (25, (1..=23).sum::<u64>() - 6)
        );

        // A snapshot that no longer reads as the aggregate is ignored, not an error.
        store
            .append(
                "account.snapshot-acc-1",
                ExpectedVersion::Any,
                [EventData::new(
                    "Snapshot",
                    br#"{"sequence":25,"aggregate":{"shape":"old"}}"#.to_vec(),
                )],
            )
            .unwrap();
        let mut ignored = with.load_aggregate("acc-1").await.unwrap();
        assert_eq!(
            (ignored.snapshot_sequence(), ignored.events_read()),
            (0, 25)
        );
        assert_eq!(ignored.aggregate(), after.aggregate());
    });
}

/// Commands over many accounts, with refusals: the same list for both stores.
fn commands(accounts: u64, n: u64) -> Vec<(String, Cmd)> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let id = format!("acc-{}", next() % accounts);
            let cmd = match (i < accounts, next() % 10) {
                (true, _) => open(&format!("acc-{i}")),
                (false, 0) => open(&id),
                (false, 1..=4) => deposit(next() % 500),
                (false, 5..=7) => Cmd::WithdrawMoney {
                    amount: next() % 400,
                    atm_id: format!("atm-{}", next() % 3),
                },
                _ => Cmd::WriteCheck {
                    check_number: (next() % 3).to_string().repeat((next() % 2) as usize),
                    amount: next() % 300,
                },
            };
            let id = if i < accounts { format!("acc-{i}") } else { id };
            (id, cmd)
        })
        .collect()
}

#[test]
fn the_same_commands_behave_as_on_the_frameworks_memory_store() {
    let dir = tempfile::tempdir().unwrap();
    let services = || BankAccountServices {
        refused_atms: vec!["atm-2".into()],
        gate: None,
    };
    runtime().block_on(async {
        let memory = MemStore::<BankAccount>::default();
        let store = Store::open(dir.path()).unwrap();
        let on_memory = CqrsFramework::new(memory.clone(), vec![], services());
        let on_annals = annals_snapshot_cqrs::<BankAccount>(store.clone(), vec![], 3, services());
        let list = commands(10, 400);
        let (mut ok, mut refused) = (0, 0);
        for (id, cmd) in list {
            let a = on_memory
                .execute(&id, cmd.clone())
                .await
                .map_err(|e| e.to_string());
            let b = on_annals.execute(&id, cmd).await.map_err(|e| e.to_string());
            assert_eq!(a, b, "{id}");
            if a.is_ok() {
                ok += 1
            } else {
                refused += 1
            }
        }
        assert!(
            ok > 100 && refused > 20,
            "{ok} accepted, {refused} refused: the list exercises both"
        );
        let annals_store = AnnalsEventStore::<BankAccount>::new(store.clone());
        for k in 0..10 {
            let id = format!("acc-{k}");
            let expected = memory.load_events(&id).await.unwrap();
            let got = annals_store.load_events(&id).await.unwrap();
            let key = |e: &cqrs_es::EventEnvelope<BankAccount>| {
                (
                    e.aggregate_id.clone(),
                    e.sequence,
                    e.payload.clone(),
                    e.metadata.clone(),
                )
            };
            assert_eq!(
                got.iter().map(key).collect::<Vec<_>>(),
                expected.iter().map(key).collect::<Vec<_>>(),
                "{id}"
            );
            let mut m = memory.load_aggregate(&id).await.unwrap();
            let mut a = annals_store.load_aggregate(&id).await.unwrap();
            assert_eq!(m.aggregate(), a.aggregate(), "{id}");
        }
    });
}

#[test]
fn a_query_fed_from_the_log_survives_a_restart_and_rebuilds_from_zero() {
    let dir = tempfile::tempdir().unwrap();
    let services = BankAccountServices::default;
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let cqrs = annals_cqrs::<BankAccount>(store.clone(), vec![], services());
        for (id, cmd) in commands(20, 300) {
            let _ = cqrs.execute(&id, cmd).await;
        }
        // Events of another aggregate type are not this feed's.
        store
            .append(
                "ledger-1",
                ExpectedVersion::Any,
                [EventData::new("Closed", b"{}".to_vec())],
            )
            .unwrap();
        let query = BalanceQuery::default();
        let feed =
            QueryFeed::<BankAccount>::new(store.clone(), "balances", vec![Box::new(query.clone())]);
        let first = feed.catch_up().await.unwrap();
        assert_eq!(first, store.read_category("account", 0).count() as u64);
        let views = query.views();
        // Each view is what the aggregate says.
        let es = AnnalsEventStore::<BankAccount>::new(store.clone());
        for (id, view) in &views {
            let mut context = es.load_aggregate(id).await.unwrap();
            assert_eq!(view.balance, context.aggregate().balance, "{id}");
            assert_eq!(view.sequence, context.current_sequence(), "{id}");
        }
        drop((cqrs, feed, store, es));

        // Restart: the feed goes on from its checkpoint, so only new events are dispatched.
        let store = Store::open(dir.path()).unwrap();
        let cqrs = annals_cqrs::<BankAccount>(store.clone(), vec![], services());
        cqrs.execute("acc-3", deposit(77)).await.unwrap();
        let later = BalanceQuery::default();
        let feed =
            QueryFeed::<BankAccount>::new(store.clone(), "balances", vec![Box::new(later.clone())]);
        assert_eq!(feed.catch_up().await.unwrap(), 1);
        assert_eq!(later.views()["acc-3"].balance, views["acc-3"].balance + 77);
        // Rebuilt from zero: the same views as before, plus the new deposit.
        feed.rebuild().unwrap();
        let rebuilt = BalanceQuery::default();
        let feed = QueryFeed::<BankAccount>::new(
            store.clone(),
            "balances",
            vec![Box::new(rebuilt.clone())],
        );
        assert_eq!(feed.catch_up().await.unwrap(), first + 1);
        let mut expected = views.clone();
        if let Some(v) = expected.get_mut("acc-3") {
            v.balance += 77;
        }
        let got = rebuilt.views();
        assert_eq!(got.len(), expected.len());
        for (id, view) in got {
            assert_eq!(view.balance, expected[&id].balance, "{id}");
        }
        // A commit's events come in one dispatch, in sequence order.
        for (_, sequences) in rebuilt.dispatches.lock().unwrap().iter() {
            assert!(
                sequences.windows(2).all(|w| w[1] == w[0] + 1),
                "{sequences:?}"
            );
        }
    });
}

#[test]
fn a_following_feed_dispatches_commands_as_they_commit() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let query = BalanceQuery::default();
        let feed =
            QueryFeed::<BankAccount>::new(store.clone(), "live", vec![Box::new(query.clone())]);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let follower = tokio::spawn(async move {
            feed.follow_until(async {
                let _ = stopped.await;
            })
            .await
        });
        let cqrs =
            annals_cqrs::<BankAccount>(store.clone(), vec![], BankAccountServices::default());
        cqrs.execute("acc-1", open("acc-1")).await.unwrap();
        for n in 1..=50 {
            cqrs.execute("acc-1", deposit(n)).await.unwrap();
        }
        // The feed keeps up without being asked.
        for _ in 0..500 {
            if query.views().get("acc-1").is_some_and(|v| v.sequence == 51) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(query.views()["acc-1"].balance, (1..=50).sum::<u64>());
        stop.send(()).unwrap();
        assert_eq!(follower.await.unwrap().unwrap(), 51);
        assert_eq!(store.checkpoint("live").unwrap(), Some(51));
    });
}

#[test]
fn an_event_that_does_not_read_as_the_aggregates_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let cqrs = annals_cqrs::<BankAccount>(store.clone(), vec![], BankAccountServices::default());
        cqrs.execute("acc-1", open("acc-1")).await.unwrap();
        cqrs.execute("acc-2", open("acc-2")).await.unwrap();
        // Written by hand, in a shape the enum does not have.
        store.append("account-acc-2", ExpectedVersion::Any, [EventData::new("Frozen", br#"{"Frozen":{}}"#.to_vec())]).unwrap();
        cqrs.execute("acc-1", deposit(5)).await.unwrap();
        let es = AnnalsEventStore::<BankAccount>::new(store.clone());
        match es.load_aggregate("acc-2").await {
            Err(AggregateError::DeserializationError(e)) => {
                assert!(e.to_string().contains("position 2"), "{e}");
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("loaded"),
        }
        let query = BalanceQuery::default();
        let feed = QueryFeed::<BankAccount>::new(store.clone(), "views", vec![Box::new(query.clone())]);
        let stopped = feed.catch_up().await;
        assert!(matches!(&stopped, Err(annals::Error::Json { event, .. }) if event.contains("position 2")), "{stopped:?}");
        // Everything before it was dispatched, and the checkpoint stays on it.
        assert_eq!(query.views().len(), 2);
        assert_eq!(feed.position().unwrap(), 2);
    });
}

#[test]
fn an_aggregate_missing_events_fails_to_load_rather_than_load_wrong() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let cqrs = annals_snapshot_cqrs::<BankAccount>(
            store.clone(),
            vec![],
            3,
            BankAccountServices::default(),
        );
        for id in ["kept", "limited", "deleted", "erased"] {
            cqrs.execute(id, open(id)).await.unwrap();
            for n in 1..=7 {
                cqrs.execute(id, deposit(n)).await.unwrap();
            }
        }
        store
            .set_retention("account-limited", annals::Retention::default().max_count(2))
            .unwrap();
        store
            .delete_stream("account-deleted", ExpectedVersion::Any)
            .unwrap();
        let es = AnnalsEventStore::<BankAccount>::new(store.clone()).with_snapshots(3);
        for id in ["limited", "deleted"] {
            match es.load_aggregate(id).await {
                Err(AggregateError::UnexpectedError(e)) => {
                    assert!(e.to_string().contains(&format!("account-{id}")), "{e}")
                }
                Err(e) => panic!("{id}: {e}"),
                Ok(c) => panic!("{id}: loaded at sequence {}", c.current_sequence()),
            }
        }
        // Erased (GDPR): its snapshots are left over, but they cover events the stream no
        // longer holds, so the aggregate starts anew instead of coming back.
        store.erase_stream("account-erased").unwrap();
        assert!(store.stream_version("account.snapshot-erased").is_some());
        assert_eq!(
            es.load_aggregate("erased")
                .await
                .unwrap()
                .current_sequence(),
            0
        );
        cqrs.execute("erased", open("erased")).await.unwrap();
        assert_eq!(store.stream_version("account-erased"), Some(0));
        // The untouched one loads whole.
        let mut kept = es.load_aggregate("kept").await.unwrap();
        assert_eq!((kept.current_sequence(), kept.aggregate().balance), (8, 28));
    });
}

#[test]
fn a_commit_called_by_hand_never_makes_a_wrong_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let es = AnnalsEventStore::<BankAccount>::new(store.clone()).with_snapshots(2);
        // Commits straight to the store, without the framework applying the events to the
        // context's aggregate first.
        for n in 0..10u64 {
            let context = es.load_aggregate("acc").await.unwrap();
            let event = match n {
                0 => Ev::AccountOpened {
                    account_id: "acc".into(),
                },
                n => Ev::CustomerDepositedMoney {
                    amount: n,
                    balance: (1..=n).sum(),
                },
            };
            es.commit(vec![event], context, HashMap::new())
                .await
                .unwrap();
        }
        let mut snap = es.load_aggregate("acc").await.unwrap();
        let mut full = AnnalsEventStore::<BankAccount>::new(store.clone())
            .load_aggregate("acc")
            .await
            .unwrap();
        assert!(snap.snapshot_sequence() > 0, "a snapshot was used");
        assert_eq!(snap.aggregate(), full.aggregate());
        assert_eq!(snap.aggregate().balance, 45);
    });
}

/// An aggregate whose type has a dash: not a category, refused.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Dashed;

impl cqrs_es::Aggregate for Dashed {
    const TYPE: &'static str = "order-item";
    type Command = ();
    type Event = Ev;
    type Error = bank::BankAccountError;
    type Services = ();

    async fn handle(
        &mut self,
        (): (),
        (): &(),
        _: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }

    fn apply(&mut self, _: Ev) {}
}

#[test]
fn an_aggregate_type_that_is_not_a_category_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = Store::open(dir.path()).unwrap();
        let es = AnnalsEventStore::<Dashed>::new(store.clone());
        assert!(matches!(es.load_aggregate("5").await, Err(AggregateError::UnexpectedError(e)) if e.to_string().contains("order-item")));
        let feed = QueryFeed::<Dashed>::new(store, "dashed", vec![]);
        assert!(matches!(feed.catch_up().await, Err(annals::Error::InvalidInput(_))));
    });
}
