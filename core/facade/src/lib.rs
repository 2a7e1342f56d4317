//! # tessera
//!
//! Tessera is a CQRS and event-sourcing framework for Rust services. Aggregates decide on
//! commands and emit events; the event store appends them atomically with optimistic
//! concurrency and idempotency; projections and process managers read the one global
//! log through checkpointed, gap-free subscriptions.
//!
//! This crate is the one to add: it re-exports the framework's crates and picks the
//! backends by feature. `use tessera::prelude::*;` brings the types written every day.
//!
//! | feature | default | gives |
//! |---|---|---|
//! | (always) | | [`tessera::core`](crate::core): events, the store contract, aggregates, command handling, the in-memory store, the process-manager contract, test kits |
//! | `projections` | yes | `tessera::projections`: the runner, read models and document views, reactors, the process-manager runtime, resilience guards |
//! | `postgres` | no | `tessera::postgres`: the PostgreSQL event store; with `projections`, also its PostgreSQL read models and process store; re-exports `deadpool_postgres` and `tokio_postgres` |
//! | `eventstoredb` | no | `tessera::eventstoredb`: the EventStoreDB event store |
//!
//! The defaults are memory first: an application starts on the embedded store and links
//! no database client. `postgres` alone gives the store without the projections
//! runtime (a service that only writes); with the defaults on, it gives both.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! # #[cfg(feature = "projections")] {
//! use std::collections::BTreeMap;
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use tessera::prelude::*;
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Account { balance: i64 }
//!
//! // Each variant's serde name is its stable, stored event type.
//! #[derive(Debug, Serialize, Deserialize)]
//! enum AccountEvent { #[serde(rename = "Deposited")] Deposited { amount: i64 } }
//! impl DomainEvent for AccountEvent {}
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("amount must be positive")]
//! struct NotPositive;
//!
//! impl Aggregate for Account {
//!     const CATEGORY: &'static str = "account"; // streams are "account-<id>"
//!     type Command = i64;
//!     type Event = AccountEvent;
//!     type Error = NotPositive;
//!     type Services = ();
//!     fn apply(&mut self, AccountEvent::Deposited { amount }: &AccountEvent) {
//!         self.balance += amount;
//!     }
//!     fn decide(&self, amount: &i64, _: &()) -> Result<Vec<AccountEvent>, NotPositive> {
//!         if *amount <= 0 { return Err(NotPositive); }
//!         Ok(vec![AccountEvent::Deposited { amount: *amount }])
//!     }
//! }
//!
//! // A read model: every account's balance, fed from the log.
//! struct Balances;
//! impl MemoryHandler for Balances {
//!     type Model = BTreeMap<String, i64>;
//!     fn name(&self) -> &str { "balances" }
//!     fn filter(&self) -> EventFilter { EventFilter::category("account") }
//!     fn handle(&self, model: &mut Self::Model, e: &RecordedEvent) -> Result<(), BoxError> {
//!         let AccountEvent::Deposited { amount } = AccountEvent::decode(&e.event_type, e.data.as_bytes())?;
//!         *model.entry(e.stream_id.to_string()).or_default() += amount;
//!         Ok(())
//!     }
//! }
//!
//! let store = MemoryStore::new();
//! let accounts = CommandHandler::<Account, _>::new(store.clone(), ());
//! let balances = MemoryProjection::new(Balances);
//! let runner = Runner::new(store, balances.clone(), RunnerConfig::default()).spawn();
//!
//! let outcome = accounts.handle("alice", &100).await.unwrap();
//! assert!(accounts.handle("alice", &-5).await.is_err()); // refused, nothing written
//! // Read-your-writes: wait until the read model has seen the command's events.
//! runner.wait_for(outcome.position.unwrap(), Duration::from_secs(5)).await.unwrap();
//! assert_eq!(balances.read(|b| b["account-alice"]), 100);
//! runner.stop().await;
//! # }
//! # });
//! ```
//!
//! Longer examples: `cargo run --example bank_memory` and
//! `cargo run --example bank_postgres` in the repository (`examples/basics/`); the design
//! and the guarantees of each crate: `docs/architecture.md`.

pub mod prelude;

/// The contracts every Tessera crate stands on (`tessera-core`): stream ids, events
/// and metadata, the event store contract, aggregates and command handling, snapshots,
/// upcasting, the in-memory store, the process-manager contract and the test kits.
pub use tessera_core as core;

/// The runtime of everything that reads the log (`tessera-projections`): runner,
/// read models, rebuild, status, process managers, resilience guards.
#[cfg(feature = "projections")]
pub use tessera_projections as projections;

/// The PostgreSQL event store (`tessera-postgres`).
#[cfg(feature = "postgres")]
pub use tessera_postgres as postgres;

/// The EventStoreDB event store (`tessera-eventstoredb`).
#[cfg(feature = "eventstoredb")]
pub use tessera_eventstoredb as eventstoredb;

/// Integration events over NATS JetStream (`tessera-nats`): a broker for the relays and
/// inboxes of [`projections::integration`].
#[cfg(feature = "nats")]
pub use tessera_nats as nats;

/// Integration events over RabbitMQ (`tessera-rabbitmq`): a broker for the relays and
/// inboxes of [`projections::integration`].
#[cfg(feature = "rabbitmq")]
pub use tessera_rabbitmq as rabbitmq;

/// The operator console (`tessera-console`): an axum router that shows a service's log,
/// runners, process managers and guards in a browser, and rebuilds or restarts runners.
/// One line mounts it: `router.nest_service("/admin", Console::new("Orders").store("orders", store).router())`.
#[cfg(feature = "console")]
pub use tessera_console as console;

/// `#[async_trait]`, for the traits the runtime keeps as `dyn` (a process manager's
/// `Dispatcher`).
pub use async_trait;
/// JSON values: event data and metadata headers are JSON.
pub use serde_json;
/// UUIDs: event ids, correlation and causation ids.
pub use uuid;

/// The connection pool the PostgreSQL store and read models take and hand out.
#[cfg(feature = "postgres")]
pub use deadpool_postgres;
/// The PostgreSQL client whose transactions and rows read-model handlers write with.
#[cfg(feature = "postgres")]
pub use tokio_postgres;
