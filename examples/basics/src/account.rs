//! A bank account: the aggregate both examples use.
//!
//! An account is opened, then money is deposited and withdrawn; it never goes below
//! zero. Deciding is pure: the state and the command go in, events or a refusal come
//! out. A deposit or withdrawal made for a transfer names it, so the transfer's saga
//! can follow it.

use serde::{Deserialize, Serialize};
use tessera::prelude::*;

/// What an account is asked to do (amounts in cents).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountCommand {
    Open,
    Deposit {
        amount: i64,
        transfer: Option<String>,
    },
    Withdraw {
        amount: i64,
        transfer: Option<String>,
    },
}

impl AccountCommand {
    /// A deposit that is not part of a transfer.
    pub fn deposit(amount: i64) -> Self {
        let transfer = None;
        AccountCommand::Deposit { amount, transfer }
    }

    /// A withdrawal that is not part of a transfer.
    pub fn withdraw(amount: i64) -> Self {
        let transfer = None;
        AccountCommand::Withdraw { amount, transfer }
    }
}

/// What an account records. Each variant's serde name is its stored event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    #[serde(rename = "AccountOpened")]
    Opened,
    #[serde(rename = "Deposited")]
    Deposited {
        amount: i64,
        transfer: Option<String>,
    },
    #[serde(rename = "Withdrawn")]
    Withdrawn {
        amount: i64,
        transfer: Option<String>,
    },
}
impl DomainEvent for AccountEvent {}

/// Why an account refuses a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is not open")]
    NotOpen,
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the amount must be more than zero")]
    NotPositive,
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    InsufficientFunds { balance: i64, asked: i64 },
}

/// The state folded from an account's stream.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    balance: i64,
}

impl Aggregate for Account {
    const CATEGORY: &'static str = "account"; // streams are "account-<id>"
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = (); // what deciding needs from outside (prices, clocks): nothing

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened => self.open = true,
            AccountEvent::Deposited { amount, .. } => self.balance += amount,
            AccountEvent::Withdrawn { amount, .. } => self.balance -= amount,
        }
    }

    fn decide(&self, command: &AccountCommand, _: &()) -> Result<Vec<AccountEvent>, AccountError> {
        use AccountCommand::{Deposit, Open, Withdraw};
        let event = match command.clone() {
            Open if self.open => return Err(AccountError::AlreadyOpen),
            Open => AccountEvent::Opened,
            _ if !self.open => return Err(AccountError::NotOpen),
            Deposit { amount, .. } | Withdraw { amount, .. } if amount <= 0 => {
                return Err(AccountError::NotPositive)
            }
            Withdraw { amount, .. } if amount > self.balance => {
                let balance = self.balance;
                return Err(AccountError::InsufficientFunds {
                    balance,
                    asked: amount,
                });
            }
            Deposit { amount, transfer } => AccountEvent::Deposited { amount, transfer },
            Withdraw { amount, transfer } => AccountEvent::Withdrawn { amount, transfer },
        };
        Ok(vec![event])
    }
}

/// How an account's event changes its balance (an opening: by 0), for the read models.
pub fn balance_change(event: &RecordedEvent) -> Result<i64, BoxError> {
    let event = AccountEvent::decode(&event.event_type, event.data.as_bytes())?;
    Ok(match event {
        AccountEvent::Opened => 0,
        AccountEvent::Deposited { amount, .. } => amount,
        AccountEvent::Withdrawn { amount, .. } => -amount,
    })
}

/// The account id of an `account-<id>` stream.
pub fn account_id(event: &RecordedEvent) -> &str {
    let stream = event.stream_id.as_str();
    stream.strip_prefix("account-").unwrap_or(stream)
}
