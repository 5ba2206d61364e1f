//! The bank account of cqrs-es's own demo, written again for the tests, the example and the
//! benchmark: open an account, deposit, withdraw at an ATM, write a cheque; a balance view.
//! Amounts are in cents.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, Query};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankAccountCommand {
    OpenAccount { account_id: String },
    DepositMoney { amount: u64 },
    WithdrawMoney { amount: u64, atm_id: String },
    WriteCheck { check_number: String, amount: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum BankAccountEvent {
    AccountOpened {
        account_id: String,
    },
    CustomerDepositedMoney {
        amount: u64,
        balance: u64,
    },
    CustomerWithdrewCash {
        amount: u64,
        balance: u64,
    },
    CustomerWroteCheck {
        check_number: String,
        amount: u64,
        balance: u64,
    },
}

impl DomainEvent for BankAccountEvent {
    fn event_type(&self) -> String {
        match self {
            BankAccountEvent::AccountOpened { .. } => "AccountOpened",
            BankAccountEvent::CustomerDepositedMoney { .. } => "CustomerDepositedMoney",
            BankAccountEvent::CustomerWithdrewCash { .. } => "CustomerWithdrewCash",
            BankAccountEvent::CustomerWroteCheck { .. } => "CustomerWroteCheck",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BankAccountError(pub String);

impl std::fmt::Display for BankAccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BankAccountError {}

/// What the aggregate asks of the world: an ATM that pays out and a cheque clearing house.
/// `gate`, when set, is waited on by every command first (the tests use it to make two
/// commands load the same aggregate before either commits).
#[derive(Default)]
pub struct BankAccountServices {
    pub refused_atms: Vec<String>,
    pub gate: Option<Arc<tokio::sync::Barrier>>,
}

impl BankAccountServices {
    async fn atm_withdrawal(&self, atm_id: &str) -> Result<(), BankAccountError> {
        if self.refused_atms.iter().any(|a| a == atm_id) {
            return Err(BankAccountError(format!("ATM {atm_id} rule violation")));
        }
        Ok(())
    }

    async fn validate_check(&self, check_number: &str) -> Result<(), BankAccountError> {
        if check_number.is_empty() {
            return Err(BankAccountError("check number required".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankAccount {
    pub account_id: String,
    pub opened: bool,
    pub balance: u64,
    pub transactions: u64,
}

impl Aggregate for BankAccount {
    const TYPE: &'static str = "account";
    type Command = BankAccountCommand;
    type Event = BankAccountEvent;
    type Error = BankAccountError;
    type Services = BankAccountServices;

    async fn handle(
        &mut self,
        command: BankAccountCommand,
        services: &BankAccountServices,
        sink: &EventSink<Self>,
    ) -> Result<(), BankAccountError> {
        if let Some(gate) = &services.gate {
            gate.wait().await;
        }
        let refuse = |why: &str| Err(BankAccountError(why.to_string()));
        match command {
            BankAccountCommand::OpenAccount { account_id } => {
                if self.opened {
                    return refuse("account already open");
                }
                sink.write(BankAccountEvent::AccountOpened { account_id }, self)
                    .await;
            }
            BankAccountCommand::DepositMoney { amount } => {
                if !self.opened {
                    return refuse("no such account");
                }
                let balance = self.balance + amount;
                sink.write(
                    BankAccountEvent::CustomerDepositedMoney { amount, balance },
                    self,
                )
                .await;
            }
            BankAccountCommand::WithdrawMoney { amount, atm_id } => {
                let Some(balance) = self.balance.checked_sub(amount) else {
                    return refuse("funds not available");
                };
                services.atm_withdrawal(&atm_id).await?;
                sink.write(
                    BankAccountEvent::CustomerWithdrewCash { amount, balance },
                    self,
                )
                .await;
            }
            BankAccountCommand::WriteCheck {
                check_number,
                amount,
            } => {
                let Some(balance) = self.balance.checked_sub(amount) else {
                    return refuse("funds not available");
                };
                services.validate_check(&check_number).await?;
                sink.write(
                    BankAccountEvent::CustomerWroteCheck {
                        check_number,
                        amount,
                        balance,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: BankAccountEvent) {
        self.transactions += 1;
        match event {
            BankAccountEvent::AccountOpened { account_id } => {
                self.account_id = account_id;
                self.opened = true;
            }
            BankAccountEvent::CustomerDepositedMoney { balance, .. }
            | BankAccountEvent::CustomerWithdrewCash { balance, .. }
            | BankAccountEvent::CustomerWroteCheck { balance, .. } => self.balance = balance,
        }
    }
}

/// The balance view of one account.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct BankAccountView {
    pub account_id: String,
    pub balance: u64,
    pub written_checks: Vec<String>,
    pub ledger: Vec<(String, u64)>,
    /// The sequence of the last event applied: an event delivered again is skipped.
    pub sequence: usize,
}

impl BankAccountView {
    fn apply(&mut self, event: &EventEnvelope<BankAccount>) {
        if event.sequence <= self.sequence {
            return;
        }
        self.sequence = event.sequence;
        match &event.payload {
            BankAccountEvent::AccountOpened { account_id } => {
                self.account_id.clone_from(account_id)
            }
            BankAccountEvent::CustomerDepositedMoney { amount, balance } => {
                self.ledger.push(("deposit".into(), *amount));
                self.balance = *balance;
            }
            BankAccountEvent::CustomerWithdrewCash { amount, balance } => {
                self.ledger.push(("atm withdrawal".into(), *amount));
                self.balance = *balance;
            }
            BankAccountEvent::CustomerWroteCheck {
                check_number,
                amount,
                balance,
            } => {
                self.ledger.push((format!("check {check_number}"), *amount));
                self.written_checks.push(check_number.clone());
                self.balance = *balance;
            }
        }
    }
}

/// One dispatch of a query: the aggregate id and the sequences it held.
pub type Dispatch = (String, Vec<usize>);

/// A query keeping every account's view in memory, shared with whoever reads them.
#[derive(Clone, Default)]
pub struct BalanceQuery {
    pub views: Arc<Mutex<HashMap<String, BankAccountView>>>,
    /// Every dispatch, as (aggregate id, sequences).
    pub dispatches: Arc<Mutex<Vec<Dispatch>>>,
}

impl BalanceQuery {
    pub fn views(&self) -> HashMap<String, BankAccountView> {
        self.views.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Query<BankAccount> for BalanceQuery {
    async fn dispatch(&self, aggregate_id: &str, events: &[EventEnvelope<BankAccount>]) {
        if let Ok(mut dispatches) = self.dispatches.lock() {
            dispatches.push((
                aggregate_id.to_string(),
                events.iter().map(|e| e.sequence).collect(),
            ));
        }
        if let Ok(mut views) = self.views.lock() {
            let view = views.entry(aggregate_id.to_string()).or_default();
            for event in events {
                view.apply(event);
            }
        }
    }
}
