//! # tessera-benches
//!
//! The `tessera-bench` load generator and the criterion micro-benchmarks. Each
//! `tessera-bench` subcommand runs one workload and prints one line of `key=value`
//! pairs, with the raw tokio-postgres baseline measured in the same run beside it and,
//! where an issue sets one, the target it is held to and whether it was met.
//! See `BENCHMARKS.md` at the repository root for the figures.

pub mod baseline;
pub mod broker;
pub mod order;
pub mod pg;
pub mod recorder;
pub mod stats;
pub mod target;
pub mod traces;
pub mod workload;
