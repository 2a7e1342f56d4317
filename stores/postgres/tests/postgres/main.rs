//! Integration tests of the PostgreSQL store, against a real server (`DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`). Each test works in a schema of its
//! own and drops it at the end.

mod analyze;
mod append;
mod bad_input;
mod cancel;
mod catalog;
mod chaos;
mod common;
mod conformance;
mod group;
mod load;
mod metrics;
mod migrate;
mod ordering;
mod read;
mod shared_reader;
mod snapshots;
mod tls;
