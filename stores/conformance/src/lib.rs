//! # tessera-conformance
//!
//! One behavioural suite that every Tessera event store must pass: expected versions,
//! idempotent appends, concurrent writers, global-log reads, subscriptions, lookups,
//! stream ids and payload round trips, exactly as documented on
//! [`EventAppender`](tessera_core::EventAppender) and
//! [`EventReader`](tessera_core::EventReader).
//!
//! A store plugs in with a [`StoreFactory`] (a fresh, empty, isolated store per test) and
//! one macro call in an integration test file:
//!
//! ```
//! use tessera_conformance::StoreFactory;
//! use tessera_core::MemoryStore;
//!
//! struct Memory;
//!
//! impl StoreFactory for Memory {
//!     type Store = MemoryStore;
//!     async fn create(&self, _test_name: &'static str) -> MemoryStore {
//!         MemoryStore::new()
//!     }
//! }
//!
//! // One `#[tokio::test]` per case, in a module named `conformance`.
//! tessera_conformance::conformance_suite!(Memory);
//! # fn main() {}
//! ```
//!
//! The factory expression is evaluated once per test, inside the generated module (which
//! glob-imports its parent, so names in scope at the call site resolve). A factory that
//! is expensive to build can hand out clones of one shared value, for example through a
//! `std::sync::LazyLock`, and isolate each test by `test_name` (a schema per test on
//! PostgreSQL). The caller does not need a `tokio` dependency: the tests use this
//! crate's.
//!
//! The cases are also public in [`cases`], so a store can run one of them on its own,
//! for instance against a store built with a special configuration:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! tessera_conformance::cases::read_stream_directions(tessera_core::MemoryStore::new()).await;
//! # });
//! ```
//!
//! Every case panics with a message naming what was expected and what the store did.
//! Waits are bounded ([`WAIT`]), so a store that hangs fails instead of hanging CI.
//! Event data is compared as parsed JSON, never as bytes, because a store may normalize
//! it (PostgreSQL `jsonb` reorders keys and drops whitespace).

use std::future::Future;
use std::time::Duration;

pub mod cases;
mod support;

/// Makes the stores the suite runs against.
pub trait StoreFactory: Send + Sync + 'static {
    /// The store under test.
    type Store: tessera_core::EventStore;

    /// A fresh, empty, isolated store for the named test.
    ///
    /// "Empty" means its global log holds no event, as seen by `head()`; "isolated" means
    /// no other test writes to it while the test runs. Panic if it cannot be made.
    fn create(&self, test_name: &'static str) -> impl Future<Output = Self::Store> + Send;
}

/// The longest any case waits for one thing (an event, visibility of a write, a task).
pub const WAIT: Duration = Duration::from_secs(30);

/// Generates `mod conformance` with one test per case of [`cases`], each run on a
/// multi-threaded tokio runtime against `$factory.create("<case>")`.
///
/// See the crate documentation for an example.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr $(,)?) => {
        #[allow(missing_docs)]
        mod conformance {
            #[allow(unused_imports)]
            use super::*;

            $crate::__conformance_tests! {
                ($factory)
                expected_version_on_empty_stream
                expected_version_on_existing_stream
                idempotent_repeats
                idempotency_conflicts
                rejected_batches
                concurrent_writers_one_stream
                concurrent_writers_many_streams
                subscribers_see_a_concurrent_burst_once
                subscription_hands_over_from_catch_up_to_live
                category_subscription
                subscription_from_a_mid_position
                read_stream_directions
                read_all_filters_and_limits
                category_filter_is_literal
                stream_version_head_and_find_event
                invalid_stream_ids
                unusual_stream_ids_round_trip
                large_payload_round_trip
                unicode_payload_round_trip
                json_shapes_round_trip
                large_batch
            }
        }
    };
}

/// Implementation detail of [`conformance_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (($factory:expr) $($case:ident)*) => {
        $(
            #[$crate::__private::tokio::test(
                crate = "::tessera_conformance::__private::tokio",
                flavor = "multi_thread",
                worker_threads = 4
            )]
            async fn $case() {
                let store =
                    $crate::StoreFactory::create(&$factory, ::core::stringify!($case)).await;
                $crate::cases::$case(store).await;
            }
        )*
    };
}

/// Implementation detail of [`conformance_suite!`].
#[doc(hidden)]
pub mod __private {
    pub use tokio;
}
