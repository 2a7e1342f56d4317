//! The aggregate contract.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::DomainEvent;

/// A consistency boundary: state folded from its own stream, deciding on commands.
///
/// Deciding is pure: the state, the command and the services the handler passes in
/// (prices, clocks) go in; events or a domain error come out. The state is serializable
/// so it can be snapshotted.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use tessera_core::{Aggregate, DomainEvent};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Counter { value: u64 }
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// enum CounterEvent { #[serde(rename = "Incremented")] Incremented { by: u64 } }
/// impl DomainEvent for CounterEvent {}
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("would overflow")]
/// struct Overflow;
///
/// impl Aggregate for Counter {
///     const CATEGORY: &'static str = "counter";
///     type Command = u64;
///     type Event = CounterEvent;
///     type Error = Overflow;
///     type Services = ();
///     fn apply(&mut self, event: &CounterEvent) {
///         match event { CounterEvent::Incremented { by } => self.value += by }
///     }
///     fn decide(&self, by: &u64, _: &()) -> Result<Vec<CounterEvent>, Overflow> {
///         self.value.checked_add(*by).ok_or(Overflow)?;
///         Ok(vec![CounterEvent::Incremented { by: *by }])
///     }
/// }
/// ```
pub trait Aggregate: Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stream category: streams are named `"{CATEGORY}-{id}"`.
    const CATEGORY: &'static str;
    /// Version of the state's serialized shape; snapshots of another version are ignored.
    const SNAPSHOT_VERSION: u32 = 1;
    /// What the aggregate is asked to do.
    type Command: Send + Sync;
    /// What it records.
    type Event: DomainEvent;
    /// Why it refuses a command.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What deciding needs from outside (use `()` for nothing).
    type Services: Send + Sync + 'static;

    /// Folds one event into the state. Must not fail: events are facts.
    fn apply(&mut self, event: &Self::Event);

    /// Decides on a command: the events to record, or why not.
    fn decide(
        &self,
        command: &Self::Command,
        services: &Self::Services,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Whether `command` usually starts the aggregate's stream (placing an order,
    /// opening an account). A command handler then decides it on the empty state without
    /// reading the stream first and appends expecting no stream; if the stream exists
    /// after all (a retry, a second request), that append fails or lands as a repeat,
    /// and the handler loads the stream and decides again (or answers the earlier run
    /// of its idempotency key), as after any conflict. A refusal or a no-op decided on
    /// the assumed empty state is decided again on the loaded one before it answers.
    /// `false` (the default): always load.
    fn starts_stream(_command: &Self::Command) -> bool {
        false
    }
}
