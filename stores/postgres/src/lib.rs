//! # tessera-postgres
//!
//! The PostgreSQL event store of Tessera, on `tokio-postgres` and `deadpool-postgres`:
//! the [`EventStore`](tessera_core::EventStore) and
//! [`SnapshotStore`](tessera_core::SnapshotStore) contracts of `tessera-core`, with the
//! same semantics as the in-memory store (the shared conformance suite checks it).
//! Appends emit metrics through the `metrics` facade (`store` = `postgres`, see
//! `tessera_core::telemetry`): install any recorder to collect them.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tessera_core::{EventAppender, EventFilter, EventReader, ExpectedVersion, NewEvent, Position, StreamId};
//! use tessera_postgres::{PostgresStore, SchemaName};
//!
//! let url = std::env::var("DATABASE_URL")
//!     .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
//! # let name = format!("doc_{}", fastrand::u64(..));
//! # let schema = SchemaName::new(&name).unwrap();
//! # /*
//! let schema = SchemaName::new("ordering").unwrap();
//! # */
//! let store = PostgresStore::builder(url)
//!     .schema(schema) // created and migrated if needed
//!     .build()
//!     .await
//!     .expect("PostgreSQL reachable");
//! let stream = StreamId::new("order-42").unwrap();
//! let placed = NewEvent::json("OrderPlaced", &serde_json::json!({"total": 10})).unwrap();
//! let outcome = store.append(&stream, ExpectedVersion::NoStream, vec![placed]).await.unwrap();
//! assert_eq!(outcome.version.0, 0); // versions start at 0
//!
//! let mut orders = store.subscribe(Position::START, EventFilter::category("order"));
//! let first = orders.next().await.expect("live").unwrap();
//! assert_eq!(first.stream_id, stream);
//! # drop(orders);
//! # let client = store.pool().get().await.unwrap();
//! # client.batch_execute(&format!("DROP SCHEMA {name} CASCADE")).await.unwrap();
//! # });
//! ```
//!
//! ## TLS
//!
//! Connections honour the URL's `sslmode` as libpq does, on rustls: `disable`, `prefer`
//! (the default), `require`, `verify-ca` and `verify-full`, with the roots from
//! `sslrootcert=<file>` or the system's trust store. The store's pool and its LISTEN
//! connection use [`tls::connector_for`]; build other pools on the same database with it
//! too (a [`PostgresStore::from_pool`] store gets its LISTEN connection's TLS from
//! [`Builder::listen_config`]). The [`tls`] module has the table of what each mode
//! checks, and where this differs from libpq.
//!
//! ## Schema
//!
//! Everything lives in one schema per store ([`SchemaName`], default `tessera`), so each
//! bounded context can own its own. Migrations are embedded, versioned and idempotent;
//! [`Builder::build`] runs them in one transaction under `pg_advisory_xact_lock` and
//! records each in `<schema>.tessera_migrations`. A starter that finds another one
//! migrating the same schema waits for it up to
//! [`Builder::migration_lock_timeout`] (default 60 s), then fails transiently.
//!
//! | table | columns | keys |
//! |---|---|---|
//! | `streams` | `stream_id text`, `version bigint` | primary key `stream_id` |
//! | `events` | `global_position bigint` identity, `tx_id xid8` default `pg_current_xact_id()`, `stream_id`, `category` (generated: the part before the first `-`), `version`, `event_id uuid`, `event_type`, `schema_version`, `data jsonb`, `metadata jsonb`, `recorded_at timestamptz` | primary key `(stream_id, version)`, unique `(stream_id, event_id)`, indexes `(tx_id, global_position)` and `(category, tx_id, global_position)` |
//! | `snapshots` | `stream_id`, `version`, `schema_version`, `data jsonb`, `taken_at` | primary key `stream_id` |
//!
//! ## Guarantees
//!
//! - **Atomic, checked appends.** An append is one statement: a compare-and-set on its
//!   `streams` row (insert for `NoStream`, `UPDATE … WHERE version = $expected` for
//!   `Exact`, …) and a multi-row insert of its events, which runs only if the row
//!   moved. The unique keys on `events` are backstops; there is no
//!   `ON CONFLICT DO NOTHING` on events.
//! - **Idempotency** by event id within a stream, with the rules of the contract: a
//!   refused append is an exact repeat of stored events (success, original outcome,
//!   nothing written), a `WrongExpectedVersion`, or a `DuplicateEventId`. So an append
//!   that failed with `Unavailable` (connection lost, maybe during `COMMIT`) can be
//!   retried with the same ids and lands exactly once.
//! - **A gap-free global log.** Positions are `(tx_id, global_position)`
//!   ([`Position`](tessera_core::Position)`{ commit, prepare }`), and readers only see
//!   rows whose transaction is older than every running one
//!   (`tx_id < pg_snapshot_xmin(pg_current_snapshot())`). A transaction that took a
//!   lower position but commits late is never skipped: everything after it waits for
//!   it. No timeouts. A long-open transaction anywhere on the server delays readers;
//!   [`PostgresStore::reader_lag`] (also [`EventReader::reader_lag`](tessera_core::EventReader::reader_lag), which a
//!   projection runner reports in its status) shows by how much and how old it is.
//! - **Subscriptions** are the core's polling loop over that log (catch-up and live are
//!   one path, so no gap and no duplicate at the hand-over), woken by `LISTEN/NOTIFY`
//!   on a connection of their own that reconnects with backoff. Notifications are
//!   hints: polling is the correctness path. A bounded buffer gives back-pressure.
//!   While committed events wait behind an open transaction, one store-wide re-check
//!   wakes the subscriptions again shortly (after a millisecond, doubling up to half a
//!   second while they stay hidden). A store's
//!   writers wake its own subscriptions at the commit, so its own `NOTIFY`s (their
//!   payload names the store object) do not wake them again; several stores of one
//!   process in one database can listen on one connection
//!   ([`Builder::listen_with`]): the server spends a transaction per `NOTIFY` on every
//!   listening connection of the database. The store's subscriptions share one reader
//!   of the log, whose read and hidden-events check are one statement.
//! - **Group commit, without a writer task.** The store keeps a few append
//!   connections (two by default, [`Builder::writers`]). An append that finds one free
//!   leads a group on it in its caller's task: the appends at the front of the queue,
//!   normally its own among them (up to [`Builder::max_group_size`]), run as one
//!   statement in its own implicit transaction: one round trip and one commit (one WAL
//!   flush) for the group, and no hand-off to another task for the caller leading it.
//!   Appends arriving while every connection is busy queue; whoever frees a connection
//!   wakes one of their callers to lead the next group. A lone append goes out at
//!   once, so nothing waits when there is no concurrency. A caller dropped while
//!   leading (a cancelled request) does not abandon the group: it finishes on a
//!   spawned task, and queued appends whose callers all gave up still run; a group
//!   that panics gives its connection slot back. At most `16 × max_group_size` (at
//!   least 1,024) appends queue; past that an append fails at once as
//!   `StoreError::Unavailable`, writing nothing. A group holds one append per stream,
//!   and no two groups in flight share a stream: a later append to a stream being
//!   written stays queued, in its place, for a later group, and sees the first. Each append still succeeds or fails on its own expectation
//!   and is acknowledged only after its transaction commits; an append whose id is
//!   already stored fails the group's statement, and then every append of that group
//!   runs alone. Each append connection is kept across groups and set to generic
//!   plans (custom plans of the append statements cost more to make than they save).
//! - **Errors** map by SQLSTATE and constraint name, never by message text: lost or
//!   refused connections, pool timeouts and statements that lost to other transactions
//!   (lock timeout, serialization failure, deadlock) are `StoreError::Unavailable`,
//!   worth retrying, naming host and port, and so is an append cut short for now
//!   (statement timeout, cancel, lack of resources: nothing was written; a read failing
//!   so stays a `Backend` error, which a runner reports and retries). Rows that do
//!   not decode are `StoreError::Corrupt` naming stream and version (a log read
//!   returns the events before the first such row; the next read reports it).
//!   A connection whose transaction failed is rolled back or dropped, never pooled.
//! - **Browsing** (`categories`, `streams`, `correlated` of
//!   [`EventReader`](tessera_core::EventReader), for an operator's console): pages in
//!   byte order (`COLLATE "C"`) whatever the database's collation, without reading the
//!   log: a loose index scan of the category index, a scan of the `streams` table, and
//!   a walk of the log index that stops at the limit, under the same visibility rule as
//!   `read_all` (each statement in `sql/catalog_*.sql` says what it costs).
//! - **Plans made for the tables as they are** ([`Analyzer`], opt-in): a prepared
//!   statement's plan, made while its table was nearly empty, reads the whole table on
//!   every run until the table's statistics change, which autovacuum does a minute or
//!   more later. An analyzer runs `ANALYZE` (indexed columns only) on the tables of the
//!   schemas it watches each time one doubles past 64 rows, so the plans are made
//!   again. A 30-s flash sale on a new database settled 835–958 orders/s with it (from
//!   1,000 rows, its threshold then) and 641–729 without (BENCHMARKS.md, session 22).
//! - **Tracing**: `append` (stream, expected version, events), `read_stream`,
//!   `read_all` and `subscribe` spans; `categories`, `streams` and `correlated` spans
//!   carry the limit, never the caller's ids.

pub mod analyze;
mod append;
mod builder;
mod catalog;
mod codec;
mod connect;
mod error;
mod lag;
mod listen;
mod migrate;
mod notify;
mod read;
mod schema;
mod snapshot;
mod sql;
mod store;
mod subscribe;
mod tail;
pub mod tls;

pub use analyze::{Analyzer, AnalyzerConfig};
pub use builder::Builder;
pub use schema::{InvalidSchemaName, SchemaName, MAX_SCHEMA_NAME_LEN};
pub use store::PostgresStore;
/// Re-exported from the core, where every store's [`EventReader::reader_lag`](tessera_core::EventReader::reader_lag) answers it.
pub use tessera_core::ReaderLag;
/// The client crates this one's API exposes ([`PostgresStore::pool`], configs and
/// errors), re-exported so a user names the same versions without adding them.
pub use {deadpool_postgres, tokio_postgres};
