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
//! - **Idempotency** is EventStoreDB's own: event ids go to the server as they are and
//!   an append is one request, whatever the stream's length. Where EventStoreDB's rules
//!   differ from the strict contract, so does this store: a batch whose expectation holds
//!   is appended even if an id of it is already stored earlier in the stream (with
//!   `Exact(current)`, or with `Any`/`StreamExists` when the batch's first id is new),
//!   where the memory and PostgreSQL stores answer `DuplicateEventId`; with
//!   `Any`/`StreamExists`, a batch whose first id is stored but a later one is not is
//!   `WrongExpectedVersion`, and one whose ids are all stored, in any order, is a repeat
//!   whose outcome names the batch's last id. This store never returns
//!   `DuplicateEventId`. The conformance suite asserts exactly this behaviour for this
//!   store (`Idempotency::EventStoreDb` in `tessera-conformance`). EventStoreDB also
//!   remembers ids for `Any`/`StreamExists` repeats in a bounded cache, so a very old
//!   repeat with those expectations may be appended again.
//! - **Subscriptions** are the core's polling loop over `read_all`, woken by a live
//!   `$all` subscription (hint only), so the hand-over rules are the same as every store.
//! - **Snapshots** are kept as the last event of a stream `tessera-snapshot:{stream}`,
//!   hidden from every read of the log.
//! - **Isolation**: [`EventStoreDbStore::connect_with_prefix`] keeps an application's (or
//!   a test's) streams under a prefix on a shared server.
//!
//! ## What was run, and against what
//! Nothing has run against a real EventStoreDB server: none can be installed on the
//! machines this was built on. On every `cargo test -p tessera-eventstoredb`, the whole
//! conformance suite runs through the real client, over gRPC on a local socket, against
//! an in-memory fake server written for these tests (the `tessera-eventstoredb-fake`
//! crate, `stores/eventstoredb/fake/`). It
//! models appends with expected revisions and EventStoreDB's idempotency rules, stream
//! and `$all` reads, subscriptions, positions and error statuses, as read from the
//! protocol files and the server's rules; it cannot tell how a real server behaves
//! (exact positions, timing, deleted streams, metadata, projections, clustering, the
//! bounded id cache behind real idempotency). The mappings are also unit-tested, and
//! connection failure is tested against a closed port.
//! `cargo test -p tessera-eventstoredb --features live-server` runs the same suite
//! against `EVENTSTOREDB_URL` instead (a fresh server, e.g. `--mem-db --insecure`).

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
