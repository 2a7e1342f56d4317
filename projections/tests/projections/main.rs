//! Integration tests of the projection runner: in-memory and PostgreSQL read models.
//! The PostgreSQL tests use DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test)
//! and fail with instructions when it is not reachable.
#![allow(missing_docs)]

mod checkpoints;
mod leader;
mod memory;
mod metrics;
mod pg_support;
mod postgres;
mod process_burst;
mod process_cases;
mod process_concurrency;
mod process_marks;
mod process_memory;
mod process_postgres;
mod process_records;
mod process_retention;
mod process_retention_pg;
mod process_status;
mod process_support;
mod relay;
mod relay_pipeline;
mod resilience;
mod support;
mod upgrade;
mod views;
mod waits;
