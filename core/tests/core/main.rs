//! Integration tests of tessera-core: command handling, retries, idempotency, snapshots,
//! upcasting, bad input and the test kit, around one small aggregate ([`tally::Tally`]).
#![allow(missing_docs)]

mod bad_input;
mod cache;
mod command;
mod doubles;
mod fingerprint;
mod idempotency;
mod metrics;
mod process;
mod retry;
mod snapshot;
mod tally;
mod testkit;
mod upcast;
