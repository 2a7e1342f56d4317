//! # tessera-eventstoredb
//!
//! A Tessera [`EventStore`](tessera_core::EventStore) on EventStoreDB, through the
//! official `eventstore` gRPC client.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_core::{EventAppender, ExpectedVersion, NewEvent, StreamId};
//! use tessera_eventstoredb::EventStoreDbStore;
//!
//! let store = EventStoreDbStore::connect("esdb://127.0.0.1:2113?tls=false")?;
//! let placed = NewEvent::json("OrderPlaced", &serde_json::json!({"total": 10}))?;
//! store.append(&StreamId::new("order-1")?, ExpectedVersion::NoStream, vec![placed]).await?;
//! # Ok(()) }
//! ```
//!
//! ## Mapping
//! - Expected versions map one to one (`Any`, `NoStream`, `StreamExists`, `Exact(n)`):
//!   both number a stream's events from 0.
//! - Event ids are passed through, so EventStoreDB's own idempotency applies to retried
//!   appends.
//! - Metadata is stored as the event's custom metadata, JSON, with correlation and
//!   causation ids under `$correlationId` and `$causationId` (the names EventStoreDB's
//!   system projections read), the schema version under `tesseraSchemaVersion`, and
//!   headers under `headers`.
//! - Positions are EventStoreDB's own `$all` commit/prepare pair, which is exactly
//!   Tessera's [`Position`](tessera_core::Position).
//! - Errors: wrong expected version → `WrongExpectedVersion` with the server's actual
//!   revision; connection loss, deadlines, not-leader and server errors (gRPC
//!   `Unavailable`, `Internal`, `Unknown`, `DataLoss`) → `Unavailable`; the rest → `Backend`.
//!
//! ## Where EventStoreDB differs from the contract
//! - **Category reads** do not use `$ce-` streams (they need the by-category system
//!   projection to be running): `read_all` and subscriptions filter `$all` by stream
//!   name on the client. Type filters are applied the same way.
//! - **System events** (`$`-prefixed streams or types) are never returned.
//! - **`find_event`** scans the stream newest-first: EventStoreDB has no index by event id.
//! - **Idempotency** follows EventStoreDB's rules, which the contract was modelled on; an
//!   exact repeat returns the server's answer for the repeated write.
//! - **Subscriptions** are the core's polling loop over `read_all`, woken by a live
//!   `$all` subscription (hint only), so the hand-over rules are the same as every store.
//! - **Snapshots** are kept as the last event of a stream `tessera-snapshot:{stream}`,
//!   hidden from every read of the log.
//! - **Isolation**: [`EventStoreDbStore::connect_with_prefix`] keeps an application's (or
//!   a test's) streams under a prefix on a shared server.
//!
//! ## What was run against a live server
//! None of it: no EventStoreDB server can be installed on the machines this was built
//! on. The mappings are unit-tested; connection failure is tested against a closed port;
//! `cargo test -p tessera-eventstoredb --features live-server` runs the whole conformance
//! suite against `EVENTSTOREDB_URL` (a fresh server, e.g. `--mem-db --insecure`).

mod map;
mod snapshot;
mod store;

pub use map::EsdbMetadata;
pub use store::EventStoreDbStore;

/// The pure mappings, public for inspection and tests.
pub mod mapping {
    pub use crate::map::{
        current_version, error, esdb_position, expected_revision, is_system, position, recorded,
        to_esdb_metadata,
    };
}
