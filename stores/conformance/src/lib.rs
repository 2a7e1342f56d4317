//! # tessera-conformance
//!
//! One behavioural suite that every Tessera event store must pass: expected versions,
//! idempotent appends, concurrent writers, global-log reads, subscriptions, lookups,
//! stream ids and payload round trips, and the optional browsing reads, exactly as
//! documented on [`EventAppender`](tessera_core::EventAppender) and
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
//! A store whose idempotency follows EventStoreDB's server rather than the contract's
//! strict rules says so with [`StoreFactory::idempotency`]; the suite then asserts
//! that store's exact behaviour where the two differ (see [`Idempotency`]).
//!
//! The browsing reads (`categories`, `streams`, `correlated`) are optional in the
//! contract: a store may answer `Ok(None)`, "cannot". A store that answers them says so
//! with [`StoreFactory::browsing`] ([`Browsing::Answers`]), so that a `None` fails the
//! suite (a wrapper that forgets to forward them, say); by default a case the store
//! declines is skipped, and says so on stderr (see [`Browsing`]).
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

    /// The idempotency rules the store follows. [`Idempotency::Strict`] unless the
    /// factory says otherwise.
    fn idempotency(&self) -> Idempotency {
        Idempotency::Strict
    }

    /// Whether the store answers the optional browsing reads.
    /// [`Browsing::MayDecline`] unless the factory says otherwise.
    fn browsing(&self) -> Browsing {
        Browsing::MayDecline
    }
}

/// Whether a store answers the contract's optional browsing reads
/// ([`categories`](tessera_core::EventReader::categories),
/// [`streams`](tessera_core::EventReader::streams),
/// [`correlated`](tessera_core::EventReader::correlated)), for the cases of
/// [`cases::categories_in_byte_order`], [`cases::streams_in_byte_order`] and
/// [`cases::correlated_events`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Browsing {
    /// The store may answer `Ok(None)` ("this store cannot"), as the contract's default
    /// methods do. A case whose read the store declines checks nothing more and is
    /// skipped, with a `SKIPPED` line naming the case and the method written straight
    /// to stderr, past the test harness's capture, so it shows in every run. A store
    /// that answers is checked in full.
    #[default]
    MayDecline,
    /// The store answers every browsing read: `Ok(None)` fails the case.
    Answers,
}

/// The idempotency rules a store follows, for the cases where stores may differ
/// ([`cases::idempotency_conflicts`]). Every other case, exact repeats included
/// ([`cases::idempotent_repeats`]), holds for both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Idempotency {
    /// The contract's rules: a batch is a repeat only when its ids are stored exactly
    /// where the expectation puts them (anywhere, as one span, for `Any` and
    /// `StreamExists`); a batch whose expectation holds but one of whose ids is
    /// already stored in the stream is refused with `DuplicateEventId`.
    #[default]
    Strict,
    /// EventStoreDB's rules (its commit check, `IndexWriter.CheckCommit`), for a store
    /// that passes event ids through to the server: a batch whose expectation holds is
    /// appended even if an id of it is stored earlier in the stream; a repeat is
    /// recognised only where EventStoreDB's commit check recognises it. With `Any` or
    /// `StreamExists`, a batch whose first id is new is appended whatever its other ids;
    /// one whose first id is stored but not every id is refused with
    /// `WrongExpectedVersion`; one whose ids are all stored in the stream, in any order
    /// and at any places, is a repeat whose outcome names the version and position of
    /// the batch's *last* id (and `first_version` = that version + 1 − batch length,
    /// the server reporting only the last revision). With `NoStream` or `Exact`, a
    /// repeat must be exactly the events stored after the expectation, and `Exact` of
    /// the current version appends whatever the ids.
    EventStoreDb,
}

/// The longest any case waits for one thing (an event, visibility of a write, a task).
pub const WAIT: Duration = Duration::from_secs(30);

/// Generates `mod conformance` with one test per case of [`cases`], each run on a
/// multi-threaded tokio runtime against `$factory.create("<case>")`; the cases that
/// depend on the store's [`Idempotency`] also get `$factory.idempotency()`, and the
/// browsing cases `$factory.browsing()` ([`Browsing`]).
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
                [idempotency_conflicts]
                {categories_in_byte_order streams_in_byte_order correlated_events}
                expected_version_on_empty_stream
                expected_version_on_existing_stream
                idempotent_repeats
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
                last_of_types_looks_back
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
    (($factory:expr) [$($with_idempotency:ident)*] {$($with_browsing:ident)*} $($case:ident)*) => {
        $(
            #[$crate::__private::tokio::test(
                crate = "::tessera_conformance::__private::tokio",
                flavor = "multi_thread",
                worker_threads = 4
            )]
            async fn $with_idempotency() {
                let factory = $factory;
                let idempotency = $crate::StoreFactory::idempotency(&factory);
                let store = $crate::StoreFactory::create(
                    &factory,
                    ::core::stringify!($with_idempotency),
                )
                .await;
                $crate::cases::$with_idempotency(store, idempotency).await;
            }
        )*
        $(
            #[$crate::__private::tokio::test(
                crate = "::tessera_conformance::__private::tokio",
                flavor = "multi_thread",
                worker_threads = 4
            )]
            async fn $with_browsing() {
                let factory = $factory;
                let browsing = $crate::StoreFactory::browsing(&factory);
                let store = $crate::StoreFactory::create(
                    &factory,
                    ::core::stringify!($with_browsing),
                )
                .await;
                $crate::cases::$with_browsing(store, browsing).await;
            }
        )*
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
