//! # tessera-core
//!
//! The contracts every Tessera crate stands on: stream ids, events and metadata,
//! expected versions, the [`EventStore`] contract (append, read, subscribe, and browse
//! for an operator: [`EventReader::categories`], [`EventReader::streams`],
//! [`EventReader::correlated`]), typed domain events with upcasting, aggregates and the
//! [`CommandHandler`], snapshots, the embedded [`MemoryStore`], a given/when/then
//! [`testkit`], and the [`process`]-manager (saga) contract with its own test kit
//! ([`process::ProcessTest`]); its durable runtime lives in `tessera-projections`.
//!
//! Conventions used by every store:
//! - stream versions start at **0** and have no holes;
//! - global [`Position`]s are ordered `(commit, prepare)` pairs, strictly increasing in
//!   the order readers receive events; [`Position::START`] is before the first event;
//! - event types are stable names (the serde variant name of a [`DomainEvent`]).
//!
//! Appends and command handling emit metrics through the [`metrics`] facade (see
//! [`telemetry`]): install any recorder to collect them; without one they cost nothing.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use serde::{Deserialize, Serialize};
//! use tessera_core::{Aggregate, CommandHandler, DomainEvent, MemoryStore};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Account { balance: i64 }
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! enum AccountEvent {
//!     #[serde(rename = "Deposited")]
//!     Deposited { amount: i64 },
//! }
//! impl DomainEvent for AccountEvent {}
//!
//! #[derive(Debug, thiserror::Error)]
//! enum AccountError { #[error("amount must be positive")] NotPositive }
//!
//! impl Aggregate for Account {
//!     const CATEGORY: &'static str = "account";
//!     type Command = i64;
//!     type Event = AccountEvent;
//!     type Error = AccountError;
//!     type Services = ();
//!     fn apply(&mut self, AccountEvent::Deposited { amount }: &AccountEvent) {
//!         self.balance += amount;
//!     }
//!     fn decide(&self, amount: &i64, _: &()) -> Result<Vec<AccountEvent>, AccountError> {
//!         if *amount <= 0 { return Err(AccountError::NotPositive); }
//!         Ok(vec![AccountEvent::Deposited { amount: *amount }])
//!     }
//! }
//!
//! let accounts = CommandHandler::<Account, _>::new(MemoryStore::new(), ());
//! let outcome = accounts.handle("alice", &100).await.unwrap();
//! assert_eq!(outcome.version.map(|v| v.0), Some(0));
//! assert!(accounts.handle("alice", &-5).await.is_err());
//! assert_eq!(accounts.load("alice").await.unwrap().state.balance, 100);
//! # });
//! ```

mod aggregate;
mod backoff;
mod catalog;
mod codec;
mod command;
mod decode;
mod error;
mod event;
mod filter;
pub mod idempotency;
mod memory;
mod metadata;
mod position;
pub mod process;
mod snapshot;
mod store;
mod stream_id;
mod subscription;
pub mod telemetry;
pub mod testkit;
pub mod trace;
mod upcast;
mod version;

pub use aggregate::Aggregate;
pub use backoff::Backoff;
pub use catalog::{ListStreams, StreamInfo};
pub use codec::{CodecError, DomainEvent};
pub use command::{
    CommandError, CommandHandler, CommandOptions, CommandOutcome, Loaded, RetryPolicy,
};
pub use decode::{decode_recorded, DecodeError};
pub use error::{BoxError, StoreError};
pub use event::{EventData, EventId, InvalidJson, NewEvent, RecordedEvent};
pub use filter::EventFilter;
pub use idempotency::Fingerprint;
pub use memory::MemoryStore;
pub use metadata::Metadata;
pub use position::{InvalidPosition, Position};
pub use process::ProcessManager;
pub use snapshot::{Snapshot, SnapshotPolicy, SnapshotStore};
pub use store::{
    check_batch, AppendOutcome, Direction, EventAppender, EventReader, EventStore, Landing,
    ReadAll, ReadStream, ReaderLag,
};
pub use stream_id::{category_of, InvalidStreamId, StreamId, MAX_STREAM_ID_LEN};
pub use subscription::{Subscription, SubscriptionConfig, Wakeup};
pub use upcast::Upcasters;
pub use version::{ExpectedVersion, Version};

/// The repository README's examples, run as doctests so they keep compiling.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
