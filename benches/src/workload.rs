//! Workloads of the load generator, generic over the store.

pub mod batch;
pub mod bus_latency;
pub mod commands;
pub mod latency;
pub mod long_stream;
pub mod rebuild;
pub mod relay;
pub mod view_latency;
