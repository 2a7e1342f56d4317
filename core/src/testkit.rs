//! Given/when/then tests for aggregates, and [`Forward`] for store wrappers that change
//! only a call or two of the store they wrap.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # use tessera_core::{Aggregate, DomainEvent};
//! # #[derive(Default, Serialize, Deserialize)] struct Counter { value: u64 }
//! # #[derive(Debug, PartialEq, Serialize, Deserialize)] enum Ev { Incremented { by: u64 } }
//! # impl DomainEvent for Ev {}
//! # #[derive(Debug, thiserror::Error)] #[error("overflow")] struct Overflow;
//! # impl Aggregate for Counter {
//! #     const CATEGORY: &'static str = "counter";
//! #     type Command = u64; type Event = Ev; type Error = Overflow; type Services = ();
//! #     fn apply(&mut self, e: &Ev) { let Ev::Incremented { by } = e; self.value += by; }
//! #     fn decide(&self, by: &u64, _: &()) -> Result<Vec<Ev>, Overflow> {
//! #         self.value.checked_add(*by).ok_or(Overflow)?; Ok(vec![Ev::Incremented { by: *by }]) }
//! # }
//! use tessera_core::testkit::AggregateTest;
//! AggregateTest::<Counter>::new()
//!     .given([Ev::Incremented { by: 1 }])
//!     .when(&2)
//!     .then_expect_events([Ev::Incremented { by: 2 }]);
//! AggregateTest::<Counter>::new()
//!     .given([Ev::Incremented { by: u64::MAX }])
//!     .when(&1)
//!     .then_expect_error_message("overflow");
//! ```

use std::fmt::Debug;

use crate::{Aggregate, DomainEvent};

mod forward;

pub use forward::{Call, Forward};

/// A test of one decision: given past events, when a command, then events or an error.
pub struct AggregateTest<A: Aggregate> {
    services: A::Services,
    given: Vec<A::Event>,
}

impl<A: Aggregate> AggregateTest<A>
where
    A::Services: Default,
{
    /// A test with default services.
    pub fn new() -> Self {
        Self::with_services(A::Services::default())
    }
}

impl<A: Aggregate> Default for AggregateTest<A>
where
    A::Services: Default,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Aggregate> AggregateTest<A> {
    /// A test whose decision gets `services`.
    pub fn with_services(services: A::Services) -> Self {
        Self {
            services,
            given: Vec::new(),
        }
    }

    /// Events already in the aggregate's stream.
    #[must_use]
    pub fn given(mut self, events: impl IntoIterator<Item = A::Event>) -> Self {
        self.given.extend(events);
        self
    }

    /// Folds the given events and decides on `command`.
    pub fn when(self, command: &A::Command) -> AggregateOutcome<A> {
        let mut state = A::default();
        for e in &self.given {
            state.apply(e);
        }
        AggregateOutcome {
            result: state.decide(command, &self.services),
        }
    }
}

/// The decision under test.
pub struct AggregateOutcome<A: Aggregate> {
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> AggregateOutcome<A>
where
    A::Event: PartialEq + Debug,
{
    /// Asserts that exactly `expected` were decided, and that each round-trips through
    /// the codec (so what is stored decodes to what was decided).
    ///
    /// # Panics
    /// When the decision differs, failed, or an event does not round-trip.
    pub fn then_expect_events(self, expected: impl IntoIterator<Item = A::Event>) {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        let events = match self.result {
            Ok(events) => events,
            Err(e) => panic!("expected events {expected:?}, but the command was rejected: {e}"),
        };
        assert_eq!(events, expected, "decided events differ from the expected");
        for event in &events {
            let (ty, data) = event
                .encode()
                .unwrap_or_else(|e| panic!("event {event:?} does not encode: {e}"));
            let back = A::Event::decode(ty, data.as_bytes())
                .unwrap_or_else(|e| panic!("event {event:?} does not decode: {e}"));
            assert_eq!(&back, event, "event changed in a codec round trip");
        }
    }

    /// Asserts that the command was rejected, and returns the error for inspection.
    ///
    /// # Panics
    /// When the command was accepted.
    pub fn then_expect_error(self) -> A::Error {
        match self.result {
            Ok(events) => panic!("expected a rejection, but the command decided {events:?}"),
            Err(e) => e,
        }
    }

    /// Asserts that the command was rejected with this display message.
    ///
    /// # Panics
    /// When the command was accepted or the message differs.
    pub fn then_expect_error_message(self, message: &str) {
        assert_eq!(self.then_expect_error().to_string(), message);
    }
}
