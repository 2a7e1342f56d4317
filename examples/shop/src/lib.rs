//! The library half of the `shop` binary: the three bounded contexts, the fulfilment
//! saga, the HTTP API and the CLI, so the integration tests can start a shop in process.
//! See the binary's documentation (`src/main.rs`) for how to run it.

pub mod api;
pub mod app;
pub mod cli;
pub mod fulfilment;
pub mod gateway;
pub mod inventory;
pub mod metrics;
pub mod ordering;
pub mod payment;
pub mod reactor;
pub mod readmodel;
pub mod server;
pub mod settings;
