//! Process managers (sagas): react to events from several contexts, keep durable state
//! per instance, and issue commands.
//!
//! A [`ProcessManager`] is pure logic. For each incoming event it says which instance the
//! event belongs to ([`ProcessManager::correlate`]), and [`ProcessManager::react`] turns
//! the instance and the input (an event, a fired deadline, or a command that could not be
//! dispatched) into a [`Reaction`]: the new state, commands to issue, saga steps
//! completed (with their compensations), deadlines to schedule or cancel, and the end of
//! the instance. A runtime (`tessera-projections`' process runtime) loads instances,
//! records each reaction atomically with the subscription checkpoint, dispatches the
//! commands, and fires deadlines; [`ProcessTest`] runs the same logic in unit tests.
//!
//! The lifecycle of an instance:
//! - an event correlated with [`Correlation::Start`] creates it (or continues it, if it
//!   exists); [`Correlation::Continue`] reaches only an existing instance;
//! - [`Reaction::complete`] ends it as [`Status::Completed`]; [`Reaction::compensate`]
//!   turns it [`Status::Compensating`] and issues the compensations of its completed
//!   steps in reverse order; when every compensation has been dispatched it is
//!   `Completed` (with the reason it compensated); a compensation that cannot be
//!   dispatched after the runtime's retries ends it [`Status::Failed`] with the reason;
//! - an ended instance still receives the events correlated to it (an order cancelled
//!   after it was confirmed can compensate a completed saga), and its deadlines are
//!   cancelled when it ends.
//!
//! Every command issued gets a deterministic id and idempotency key derived from
//! (process name, instance id, triggering input id, index): see [`Issued`]. Dispatching
//! it with [`Issued::options`] makes a re-dispatch after a crash land once.
//!
//! ```
//! use std::time::Duration;
//! use serde::{Deserialize, Serialize};
//! use tessera_core::process::{Correlation, Input, Instance, ProcessManager, ProcessTest, Reaction, Status};
//! use tessera_core::{DomainEvent, EventFilter};
//!
//! // The events it listens to, from the ordering, inventory and payment contexts.
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum Event {
//!     #[serde(rename = "OrderPlaced")] OrderPlaced { order: String },
//!     #[serde(rename = "StockReserved")] StockReserved { order: String },
//!     #[serde(rename = "PaymentCharged")] PaymentCharged { order: String },
//!     #[serde(rename = "PaymentDeclined")] PaymentDeclined { order: String },
//! }
//! impl DomainEvent for Event {}
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum Command { Reserve(String), Release(String), Charge(String), Confirm(String), Reject(String) }
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
//! enum Timeout { PaymentDue }
//!
//! struct Fulfilment;
//! impl ProcessManager for Fulfilment {
//!     const NAME: &'static str = "fulfilment";
//!     type Event = Event;
//!     type State = ();
//!     type Command = Command;
//!     type Timeout = Timeout;
//!     fn filter(&self) -> EventFilter {
//!         EventFilter::categories(["order", "inventory", "payment"])
//!     }
//!     fn correlate(&self, event: &Event) -> Correlation {
//!         match event {
//!             Event::OrderPlaced { order } => Correlation::Start(order.into()),
//!             Event::StockReserved { order }
//!             | Event::PaymentCharged { order }
//!             | Event::PaymentDeclined { order } => Correlation::Continue(order.into()),
//!         }
//!     }
//!     fn react(&self, saga: &Instance<Self>, input: Input<'_, Self>) -> Reaction<Self> {
//!         let order = saga.id.to_string();
//!         match input {
//!             Input::Event(Event::OrderPlaced { .. }) => Reaction::new().issue(Command::Reserve(order)),
//!             Input::Event(Event::StockReserved { .. }) => Reaction::new()
//!                 .completed_step("reserve", Some(Command::Release(order.clone())))
//!                 .issue(Command::Charge(order))
//!                 .schedule("payment", Duration::from_secs(30), Timeout::PaymentDue),
//!             Input::Event(Event::PaymentCharged { .. }) => Reaction::new()
//!                 .cancel("payment")
//!                 .issue(Command::Confirm(order))
//!                 .complete(),
//!             Input::Event(Event::PaymentDeclined { .. }) => {
//!                 Reaction::new().compensate("payment declined").issue(Command::Reject(order))
//!             }
//!             Input::Timeout(Timeout::PaymentDue) => {
//!                 Reaction::new().compensate("payment not answered").issue(Command::Reject(order))
//!             }
//!             Input::CommandFailed { reason, .. } => Reaction::new().compensate(reason),
//!         }
//!     }
//! }
//!
//! let placed = Event::OrderPlaced { order: "o1".into() };
//! let reserved = Event::StockReserved { order: "o1".into() };
//! ProcessTest::new(Fulfilment)
//!     .given([placed.clone()])
//!     .when(reserved.clone())
//!     .then_commands([Command::Charge("o1".into())])
//!     .then_scheduled([("payment", Duration::from_secs(30))])
//!     .then_status(Status::Pending);
//! // The deadline passes: the reservation is undone, then the order rejected.
//! ProcessTest::new(Fulfilment)
//!     .given([placed, reserved])
//!     .when_timeout("o1", Timeout::PaymentDue)
//!     .then_commands([Command::Release("o1".into()), Command::Reject("o1".into())])
//!     .then_status(Status::Compensating)
//!     .dispatched()
//!     .then_status(Status::Completed)
//!     .then_reason("payment not answered");
//! ```

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{DomainEvent, EventFilter};

mod instance;
mod issued;
mod reaction;
mod status;
mod testkit;

pub use instance::Instance;
pub use issued::{CommandKind, DeadlineRequest, Effects, Issued, Trigger};
pub use reaction::Reaction;
pub use status::{Status, Step, StepState};
pub use testkit::{ProcessOutcome, ProcessTest};

/// The logic of a process manager: pure, no I/O. See the [module docs](self).
pub trait ProcessManager: Send + Sync + Sized + 'static {
    /// Stable name, unique among the process managers of one store: instance ids,
    /// command ids and storage rows are keyed by it. Lower-case letters, digits and `_`.
    const NAME: &'static str;
    /// The events it reacts to: a serde enum whose variant names are the stored event
    /// types of every context it listens to (events of other types are skipped).
    type Event: DomainEvent + fmt::Debug;
    /// Per-instance state, stored after every reaction.
    type State: Default + Clone + fmt::Debug + Serialize + DeserializeOwned + Send + Sync;
    /// The commands it issues, typically an enum the application dispatches to the
    /// target contexts' command handlers.
    type Command: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync;
    /// What a fired deadline delivers.
    type Timeout: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync;

    /// Which events of the log it reads.
    fn filter(&self) -> EventFilter;

    /// Which instance `event` belongs to, and whether it may start one.
    fn correlate(&self, event: &Self::Event) -> Correlation;

    /// Reacts to one input. Pure: everything it needs is in `instance` and `input`.
    fn react(&self, instance: &Instance<Self>, input: Input<'_, Self>) -> Reaction<Self>;
}

/// The id of a process-manager instance (an order id for an order's saga).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InstanceId(pub String);

impl InstanceId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InstanceId {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for InstanceId {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&String> for InstanceId {
    fn from(s: &String) -> Self {
        Self(s.clone())
    }
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Correlation {
    /// To this instance, creating it (with the default state) if it does not exist.
    Start(InstanceId),
    /// To this instance if it exists; otherwise the event is skipped.
    Continue(InstanceId),
    /// Nowhere: the event is skipped.
    Ignore,
}

/// What an instance reacts to.
#[derive(Debug)]
pub enum Input<'a, P: ProcessManager> {
    /// An event from the log, correlated to the instance.
    Event(&'a P::Event),
    /// A deadline the instance scheduled has passed.
    Timeout(&'a P::Timeout),
    /// A command it issued could not be dispatched (rejected, or still failing after the
    /// runtime's retries). Compensations that fail are handled by the runtime itself and
    /// never come here: they end the instance [`Status::Failed`].
    CommandFailed {
        /// The command.
        command: &'a P::Command,
        /// Why, as text.
        reason: &'a str,
    },
}
