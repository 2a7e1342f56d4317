//! Command handling: load, decide, append, retry on conflict.
//!
//! [`CommandHandler`] (in `handler`) takes commands; each goes through a `run`: loading
//! (`load`, `snapshots`) or the state cache (`cache`), finding an earlier run of a keyed
//! command (`replay`), deciding, and appending with retries (`append`). Commands for
//! one aggregate take turns in its writer lane (`lanes`).

mod append;
mod cache;
mod coalesce;
mod error;
mod handler;
mod lanes;
mod load;
mod metered;
mod options;
mod outcome;
mod replay;
mod retry;
mod run;
mod snapshots;

pub use error::CommandError;
pub use handler::CommandHandler;
pub use options::CommandOptions;
pub use outcome::{CommandOutcome, Loaded};
pub use retry::RetryPolicy;
