//! Example 2: the same accounts on PostgreSQL, with a transfer saga.
//!
//! `cargo run --example bank_postgres` (PostgreSQL at `DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`). Events live in schema `bank_example`; the
//! balance read model in `bank_example_balances_v1` with its checkpoint in
//! `bank_example_projections`, moved in the same transaction as its rows; the saga's
//! instances, outbox and checkpoint in `bank_example_saga`. Every run uses fresh account
//! ids, so it can run again: the read model and saga carry on from their checkpoints.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tessera::core::process::Status;
use tessera::core::ReadStream;
use tessera::deadpool_postgres::Transaction;
use tessera::prelude::*;
use tessera::projections::process::PgProcess;

use crate::account::{account_id, balance_change, Account, AccountCommand};
use crate::transfer::{RequestTransfer, ToAccounts, Transfer, TransferSaga};
use crate::{Config, Error};

/// The read model: a `balances` table, written in the runner's transaction.
struct Balances(String);

impl PgHandler for Balances {
    fn name(&self) -> &str {
        &self.0 // also names its schemas, so it carries the example's prefix
    }

    fn filter(&self) -> EventFilter {
        EventFilter::category("account")
    }

    async fn setup(&self, tx: &Transaction<'_>, schema: &str) -> Result<(), BoxError> {
        let table = format!(
            "CREATE TABLE {schema}.balances (account text PRIMARY KEY, cents bigint NOT NULL)"
        );
        tx.batch_execute(&table).await?;
        Ok(())
    }

    async fn handle(
        &self,
        tx: &Transaction<'_>,
        schema: &str,
        events: &[RecordedEvent],
    ) -> Result<(), BoxError> {
        let upsert = format!("INSERT INTO {schema}.balances VALUES ($1, $2) ON CONFLICT (account) DO UPDATE SET cents = balances.cents + $2");
        let upsert = tx.prepare_cached(&upsert).await?;
        for event in events {
            tx.execute(&upsert, &[&account_id(event), &balance_change(event)?])
                .await?;
        }
        Ok(())
    }
}

/// What the example did.
#[derive(Debug)]
pub struct Summary {
    /// This run's accounts and their balances in the read model, in cents.
    pub balances: BTreeMap<String, i64>,
    /// This run's transfers: id, how the saga ended, and why it compensated.
    pub transfers: Vec<(String, Status, Option<String>)>,
}

/// Runs the example: two accounts, a transfer that goes through and one to an account
/// that was never opened, which the saga undoes.
pub async fn run(config: &Config) -> Result<Summary, Error> {
    let store = config.connect().await?;
    let pool = store.pool().clone();
    let accounts = CommandHandler::<Account, _>::new(store.clone(), ());
    let transfers = CommandHandler::<Transfer, _>::new(store.clone(), ());

    // The read model and the saga are subscribers of the log, each driven by a runner;
    // the worker sends the saga's commands to the accounts.
    let handler = Balances(config.schema_named("balances"));
    let control = config.schema_named("projections");
    let balances = PgProjection::with_control_schema(pool.clone(), handler, &control).await?;
    let saga = PgProcess::new(pool, TransferSaga, &config.schema_named("saga")).await?;
    let balance_runner = Runner::new(store.clone(), balances.clone(), RunnerConfig::default());
    let balance_runner = balance_runner.spawn();
    let saga_runner = Runner::new(store.clone(), saga.clone(), RunnerConfig::default()).spawn();
    let dispatcher = Arc::new(ToAccounts(accounts.clone()));
    let worker = Worker::new(saga.clone(), dispatcher, ProcessConfig::default()).spawn();

    // Fresh ids each run, so the example can run again on the same schemas.
    let tag = &tessera::uuid::Uuid::new_v4().simple().to_string()[..8];
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|name| format!("{name}-{tag}"));
    accounts.handle(&alice, &AccountCommand::Open).await?;
    accounts
        .handle(&alice, &AccountCommand::deposit(100))
        .await?;
    accounts.handle(&bob, &AccountCommand::Open).await?; // carol never opens hers

    let mut ended = Vec::new();
    for (n, to, amount) in [(1, &bob, 30), (2, &carol, 20)] {
        let id = format!("{tag}-{n}");
        let (from, to) = (alice.clone(), to.clone());
        let request = RequestTransfer {
            id: id.clone(),
            from,
            to,
            amount,
        };
        transfers.handle(&id, &request).await?;
        // The saga works in the background; wait until this transfer has ended.
        let saga = wait_until_ended(&saga, &id).await?;
        ended.push((id, saga.status, saga.reason));
    }

    // Read-your-writes: wait until the read model has applied each account's newest event
    // (the saga wrote some of them, so their positions come from the streams).
    let mut newest = Position::START;
    for account in [&alice, &bob] {
        let stream = StreamId::from_parts(Account::CATEGORY, account)?;
        let last = store
            .read_stream(&stream, ReadStream::backward().limit(1))
            .await?;
        newest = last.iter().fold(newest, |newest, e| newest.max(e.position));
    }
    balance_runner
        .wait_for(newest, Duration::from_secs(10))
        .await?;
    let schema = balances.active_schema().await?;
    let query = format!("SELECT account, cents FROM {schema}.balances WHERE account = ANY($1)");
    let rows = store
        .pool()
        .get()
        .await?
        .query(&query, &[&vec![alice, bob, carol]])
        .await?;
    let balances = rows
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)));

    worker.stop().await;
    saga_runner.stop().await;
    balance_runner.stop().await;
    Ok(Summary {
        balances: balances.collect::<Result<_, Error>>()?,
        transfers: ended,
    })
}

/// Polls the saga's instance until it has ended (10 s at most).
async fn wait_until_ended(
    saga: &PgProcess<TransferSaga>,
    id: &str,
) -> Result<Instance<TransferSaga>, Error> {
    for _ in 0..200 {
        match saga.instance(&id.into()).await.map_err(Error::Saga)? {
            Some(instance) if instance.status.is_ended() => return Ok(instance),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    Err(Error::Unexpected(format!(
        "transfer {id} did not end within 10 s"
    )))
}
