//! Resilience for calls outside the log (a payment gateway, a shipping API): timeout,
//! retry with exponential backoff and jitter on transient errors only, a circuit breaker
//! and a bulkhead, composed by [`Resilience::call`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap().block_on(async {
//! use tessera_projections::resilience::{BreakerState, CallError, Resilience, ResilienceConfig};
//!
//! #[derive(Debug)]
//! enum GatewayError { Unavailable, Declined }
//!
//! let gateway = Resilience::new(ResilienceConfig::default());
//! let charged: Result<u32, CallError<GatewayError>> = gateway
//!     .call(|e| matches!(e, GatewayError::Unavailable), || async { Ok(42) })
//!     .await;
//! assert_eq!(charged.unwrap(), 42);
//! let declined = gateway
//!     .call(|e| matches!(e, GatewayError::Unavailable), || async { Err::<u32, _>(GatewayError::Declined) })
//!     .await;
//! assert!(matches!(declined, Err(CallError::Permanent(GatewayError::Declined))));
//! // For the readiness check and metrics:
//! let breaker = gateway.breaker().snapshot();
//! assert_eq!((breaker.state, breaker.calls, breaker.failures), (BreakerState::Closed, 2, 0));
//! # });
//! ```
//!
//! # Where it lives, and what is borrowed
//!
//! It is here, beside the runner, rather than in `tessera-core`: it is runtime machinery
//! (tokio time, a semaphore, backon), not a contract, and the process runtime's users are
//! the ones who call external services. It names no web crate.
//!
//! - **Retry**: [backon](https://docs.rs/backon)'s `ExponentialBuilder` (maintained,
//!   small, no runtime of its own; sleeps with tokio, so paused time works).
//! - **Timeout**: `tokio::time::timeout`. **Bulkhead**: a `tokio::sync::Semaphore` with
//!   a bounded wait. tower's `Timeout` and `ConcurrencyLimit` layers are these same
//!   primitives behind the `Service` trait; calling the primitives directly spares
//!   callers the `Service`/`poll_ready`/`Clone` ceremony for what is one async call, and
//!   tower's limit waits without bound where a bulkhead must refuse.
//! - **Circuit breaker**: written here (one small state machine, [`CircuitBreaker`]).
//!   What is required of it is: close only after M successful trial calls, measure the
//!   cool-down on tokio's clock (so transitions are tested in paused time, without
//!   sleeps), and expose state and counters ([`CircuitBreaker::snapshot`]) for the
//!   readiness check and metrics. We could not confirm a maintained crate offering all
//!   three, and the state machine is small; replacing it later touches only this module.

mod breaker;
mod bulkhead;
mod call;
mod retry;

pub use breaker::{BreakerConfig, BreakerSnapshot, BreakerState, CircuitBreaker, Open, Permit};
pub use bulkhead::{Bulkhead, BulkheadSnapshot, Full};
pub use call::{CallError, Resilience, ResilienceConfig};
pub use retry::RetryConfig;
