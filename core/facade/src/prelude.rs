//! The types an application writes every day: `use tessera::prelude::*;`.
//!
//! Aggregates and command handling, the store contract and its values, the in-memory
//! store, and the process-manager contract; with `projections`, the runner, in-memory
//! read models and the process runtime; with `postgres` or `eventstoredb`, their
//! stores (and, with both `postgres` and `projections`, the PostgreSQL read models and
//! process store). Everything else stays one path away in [`tessera::core`](crate::core),
//! `tessera::projections` and the store modules.

pub use tessera_core::process::{Correlation, Input, Instance, InstanceId, Issued, Reaction};
pub use tessera_core::{
    Aggregate, BoxError, CommandError, CommandHandler, CommandOptions, CommandOutcome, DomainEvent,
    EventAppender, EventFilter, EventReader, EventStore, ExpectedVersion, Fingerprint, MemoryStore,
    Metadata, NewEvent, Position, ProcessManager, RecordedEvent, StreamId, Version,
};

#[cfg(feature = "projections")]
pub use async_trait::async_trait;
#[cfg(feature = "projections")]
pub use tessera_projections::process::{
    DispatchError, Dispatcher, MemoryProcess, ProcessConfig, ProcessStore, Worker,
};
#[cfg(feature = "projections")]
pub use tessera_projections::{
    MemoryHandler, MemoryProjection, Runner, RunnerConfig, RunnerHandle, Subscriber, View,
    ViewStore,
};

#[cfg(all(feature = "projections", feature = "postgres"))]
pub use tessera_projections::process::PgProcess;
#[cfg(all(feature = "projections", feature = "postgres"))]
pub use tessera_projections::{PgHandler, PgProjection};

#[cfg(feature = "postgres")]
pub use tessera_postgres::{PostgresStore, SchemaName};

#[cfg(feature = "eventstoredb")]
pub use tessera_eventstoredb::EventStoreDbStore;
