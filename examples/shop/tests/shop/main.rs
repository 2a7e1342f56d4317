//! Integration tests of the shop: one binary, submodules per concern.

mod bad_input;
mod browser;
mod cli;
mod commands;
mod concurrency;
mod console;
mod crash;
mod e2e;
mod eventstoredb;
mod flaky;
mod gateway;
mod limits;
mod metrics;
mod otlp;
mod raw;
mod rebuild;
mod restart;
mod routes;
mod seed;
mod services;
mod shutdown;
mod support;
mod traces;
