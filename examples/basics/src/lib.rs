//! Small Tessera programs a newcomer reads in five minutes, each the body of an example:
//!
//! - [`bank_memory`] (`cargo run --example bank_memory`): an account aggregate and a
//!   balance read model on the in-memory store, with read-your-writes and an
//!   idempotent retry.
//! - [`bank_postgres`] (`cargo run --example bank_postgres`): the same on PostgreSQL,
//!   with a transfer saga (process manager) that moves money between accounts and
//!   undoes a transfer whose deposit is refused.
//!
//! Each example's `main` calls the module's `run` and prints what it returns; the
//! workspace's `tests/` crate runs them too and checks the results.

mod account;
pub mod bank_memory;
pub mod bank_postgres;
mod config;
mod transfer;

pub use config::Config;

use tessera::core::{BoxError, CommandError, InvalidStreamId, StoreError};
use tessera::projections::{PgError, WaitError};

use crate::account::AccountError;
use crate::transfer::TransferError;

/// Why an example stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No connection to the database URL.
    #[error(
        "cannot connect to PostgreSQL at {url}: {reason}\n\
         Is it running? Start it (`bash scripts/test.sh` finds, starts or installs it; or \
         `pg_ctlcluster --skip-systemctl-redirect <version> main start`), \
         or point DATABASE_URL at one."
    )]
    NoDatabase {
        /// The URL tried.
        url: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// An account command failed.
    #[error(transparent)]
    Account(#[from] CommandError<AccountError>),
    /// A transfer request failed.
    #[error(transparent)]
    Transfer(#[from] CommandError<TransferError>),
    /// The event store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An account id that makes no stream id.
    #[error(transparent)]
    StreamId(#[from] InvalidStreamId),
    /// A read model did not catch up.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The PostgreSQL read model or saga store could not be set up.
    #[error(transparent)]
    Projection(#[from] PgError),
    /// A query failed.
    #[error(transparent)]
    Query(#[from] tessera::tokio_postgres::Error),
    /// No connection from the pool.
    #[error(transparent)]
    Pool(#[from] tessera::deadpool_postgres::PoolError),
    /// The saga's store could not be read.
    #[error("saga store: {0}")]
    Saga(#[source] BoxError),
    /// Something the example did not expect.
    #[error("{0}")]
    Unexpected(String),
}
