//! Example 1: bank accounts on the in-memory store, with a balance read model.
//!
//! `cargo run --example bank_memory`. Commands go through a [`CommandHandler`] (load the
//! account's stream, decide, append); a [`MemoryProjection`] keeps every balance, fed by
//! a [`Runner`] from the store's log, never from the command path. After a command, the
//! caller waits for the read model to reach the command's position (read-your-writes).

use std::collections::BTreeMap;
use std::time::Duration;

use tessera::prelude::*;

use crate::account::{account_id, balance_change, Account, AccountCommand, AccountError};
use crate::Error;

/// The read model: each account's balance, in cents.
struct Balances;

impl MemoryHandler for Balances {
    type Model = BTreeMap<String, i64>;

    fn name(&self) -> &str {
        "balances"
    }

    fn filter(&self) -> EventFilter {
        EventFilter::category("account")
    }

    fn handle(&self, balances: &mut Self::Model, event: &RecordedEvent) -> Result<(), BoxError> {
        let change = balance_change(event)?;
        *balances.entry(account_id(event).to_owned()).or_default() += change;
        Ok(())
    }
}

/// What the example did.
#[derive(Debug)]
pub struct Summary {
    /// The read model at the end: balance per account, in cents.
    pub balances: BTreeMap<String, i64>,
    /// Whether the retried withdrawal was answered with the first one's outcome.
    pub retry_replayed: bool,
    /// Whether the same key with another amount was refused as a reused key.
    pub key_reused: bool,
    /// Why the overdraft was refused.
    pub refused: AccountError,
}

/// Runs the example: opens two accounts, moves money, and reads the balances back.
pub async fn run() -> Result<Summary, Error> {
    let store = MemoryStore::new();
    let accounts = CommandHandler::<Account, _>::new(store.clone(), ());
    let balances = MemoryProjection::new(Balances);
    let runner = Runner::new(store, balances.clone(), RunnerConfig::default()).spawn();

    accounts.handle("alice", &AccountCommand::Open).await?;
    accounts.handle("bob", &AccountCommand::Open).await?;
    accounts
        .handle("alice", &AccountCommand::deposit(100))
        .await?;
    accounts.handle("bob", &AccountCommand::deposit(20)).await?;

    // A client that retries a request sends the same idempotency key, with a fingerprint
    // of the request: the withdrawal lands once, and the retry gets the first outcome.
    let keyed = |amount: i64| -> Result<_, Error> {
        let fingerprint = Fingerprint::of(&amount).map_err(|e| Error::Unexpected(e.to_string()))?;
        Ok(CommandOptions::idempotent("withdraw-0001").with_fingerprint(fingerprint))
    };
    let withdraw = AccountCommand::withdraw(30);
    let first = accounts.handle_with("alice", &withdraw, keyed(30)?).await?;
    let retry = accounts.handle_with("alice", &withdraw, keyed(30)?).await?;
    // The same key for another request is refused, with the first outcome.
    let other = AccountCommand::withdraw(40);
    let other = accounts.handle_with("alice", &other, keyed(40)?).await;
    let key_reused = matches!(other, Err(CommandError::KeyReused { .. }));

    // The aggregate refuses to overdraw; nothing is written.
    let refused = match accounts.handle("bob", &AccountCommand::withdraw(50)).await {
        Err(CommandError::Rejected(why)) => why,
        other => return Err(Error::Unexpected(format!("overdraft: {other:?}"))),
    };

    // Read-your-writes: wait until the read model has applied the last write.
    let last = first
        .position
        .ok_or(Error::Unexpected("no position".into()))?;
    runner.wait_for(last, Duration::from_secs(5)).await?;
    let summary = Summary {
        balances: balances.read(Clone::clone),
        retry_replayed: retry.replayed,
        key_reused,
        refused,
    };
    runner.stop().await;
    Ok(summary)
}
