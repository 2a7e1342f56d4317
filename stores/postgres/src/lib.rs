//! # tessera-postgres
//!
//! The PostgreSQL event store of Tessera, on `tokio-postgres` and `deadpool-postgres`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tessera_core::{EventAppender, ExpectedVersion, NewEvent, StreamId};
//! use tessera_postgres::{PostgresStore, SchemaName};
//!
//! let store = PostgresStore::builder("postgres://postgres@127.0.0.1:5432/test")
//!     .schema(SchemaName::new("ordering")?)
//!     .build()
//!     .await?;
//! let stream = StreamId::new("order-42")?;
//! let placed = NewEvent::json("OrderPlaced", &serde_json::json!({"total": 10}))?;
//! let outcome = store.append(&stream, ExpectedVersion::NoStream, vec![placed]).await?;
//! assert_eq!(outcome.version.0, 0);
//! # Ok(()) }
//! ```

mod append;
mod builder;
mod codec;
mod conflict;
mod error;
mod group;
mod lag;
mod listen;
mod migrate;
mod read;
mod round;
mod schema;
mod snapshot;
mod sql;
mod store;
mod subscribe;
mod writer;

pub use builder::Builder;
pub use lag::ReaderLag;
pub use schema::{InvalidSchemaName, SchemaName, MAX_SCHEMA_NAME_LEN};
pub use store::PostgresStore;
