//! A fulfilment saga, a ledger aggregate its commands land on, and dispatchers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_core::process::{Correlation, Input, Instance, Issued, ProcessManager, Reaction};
use tessera_core::{
    Aggregate, CommandHandler, DomainEvent, EventAppender, EventFilter, EventReader,
    ExpectedVersion, MemoryStore, NewEvent, Position, ReadStream, StreamId,
};
use tessera_projections::process::{DispatchError, Dispatcher};
use tessera_projections::{Runner, RunnerConfig, Subscriber};

pub const PAYMENT_WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Ev {
    #[serde(rename = "OrderPlaced")]
    Placed { order: String },
    #[serde(rename = "StockReserved")]
    Reserved { order: String },
    #[serde(rename = "PaymentCharged")]
    Charged { order: String },
    #[serde(rename = "PaymentDeclined")]
    Declined { order: String },
    #[serde(rename = "OrderCancelled")]
    Cancelled { order: String },
}
impl DomainEvent for Ev {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cmd {
    Reserve(String),
    Release(String),
    Charge(String),
    Refund(String),
    Confirm(String),
}

impl Cmd {
    pub fn name(&self) -> &'static str {
        match self {
            Cmd::Reserve(_) => "Reserve",
            Cmd::Release(_) => "Release",
            Cmd::Charge(_) => "Charge",
            Cmd::Refund(_) => "Refund",
            Cmd::Confirm(_) => "Confirm",
        }
    }

    pub fn order(&self) -> &str {
        match self {
            Cmd::Reserve(o)
            | Cmd::Release(o)
            | Cmd::Charge(o)
            | Cmd::Refund(o)
            | Cmd::Confirm(o) => o,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Due {
    Payment,
}

/// order placed → reserve; reserved → charge (30 s deadline); charged → confirm;
/// declined, cancelled or deadline → compensate.
pub struct Fulfil;

impl ProcessManager for Fulfil {
    const NAME: &'static str = "fulfil";
    type Event = Ev;
    type State = ();
    type Command = Cmd;
    type Timeout = Due;

    fn filter(&self) -> EventFilter {
        EventFilter::categories(["order", "inventory", "payment"])
    }

    fn correlate(&self, event: &Ev) -> Correlation {
        match event {
            Ev::Placed { order } => Correlation::Start(order.into()),
            Ev::Reserved { order }
            | Ev::Charged { order }
            | Ev::Declined { order }
            | Ev::Cancelled { order } => Correlation::Continue(order.into()),
        }
    }

    fn react(&self, saga: &Instance<Self>, input: Input<'_, Self>) -> Reaction<Self> {
        let o = saga.id.to_string();
        match input {
            Input::Event(Ev::Placed { .. }) => Reaction::new().issue(Cmd::Reserve(o)),
            Input::Event(Ev::Reserved { .. }) => Reaction::new()
                .completed_step("reserve", Some(Cmd::Release(o.clone())))
                .issue(Cmd::Charge(o))
                .schedule("payment", PAYMENT_WINDOW, Due::Payment),
            Input::Event(Ev::Charged { .. }) => Reaction::new()
                .cancel("payment")
                .completed_step("charge", Some(Cmd::Refund(o.clone())))
                .issue(Cmd::Confirm(o))
                .complete(),
            Input::Event(Ev::Declined { .. }) => Reaction::new().compensate("payment declined"),
            Input::Event(Ev::Cancelled { .. }) => Reaction::new().compensate("order cancelled"),
            Input::Timeout(Due::Payment) => Reaction::new().compensate("payment not answered"),
            Input::CommandFailed { reason, .. } => Reaction::new().compensate(reason),
        }
    }
}

/// Appends a saga input event to the log.
pub async fn emit(store: &MemoryStore, event: Ev) -> Position {
    let (category, order) = match &event {
        Ev::Placed { order } | Ev::Cancelled { order } => ("order", order),
        Ev::Reserved { order } => ("inventory", order),
        Ev::Charged { order } | Ev::Declined { order } => ("payment", order),
    };
    let (ty, data) = event.encode().expect("encodes");
    let stream = StreamId::from_parts(category, order).expect("stream id");
    store
        .append(&stream, ExpectedVersion::Any, vec![NewEvent::new(ty, data)])
        .await
        .expect("append")
        .position
}

/// Where the saga's commands land: one stream per order, one event per command.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Ledger;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum LedgerEvent {
    #[serde(rename = "Recorded")]
    Recorded { what: String },
}
impl DomainEvent for LedgerEvent {}

#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

impl Aggregate for Ledger {
    const CATEGORY: &'static str = "ledger";
    type Command = String;
    type Event = LedgerEvent;
    type Error = Never;
    type Services = ();
    fn apply(&mut self, _: &LedgerEvent) {}
    fn decide(&self, what: &String, _: &()) -> Result<Vec<LedgerEvent>, Never> {
        Ok(vec![LedgerEvent::Recorded { what: what.clone() }])
    }
}

/// The commands landed for `order`, in order.
pub async fn ledger(store: &MemoryStore, order: &str) -> Vec<String> {
    let stream = StreamId::from_parts("ledger", order).expect("stream id");
    store
        .read_stream(&stream, ReadStream::forward())
        .await
        .expect("read")
        .iter()
        .map(|e| {
            e.data.decode::<serde_json::Value>().expect("json")["what"]
                .as_str()
                .expect("what")
                .to_owned()
        })
        .collect()
}

/// Dispatches to the ledger's command handler with the command's idempotency key.
/// Commands named in `failing` fail transiently; with `hang_after_landing`, the first
/// dispatch lands and then never returns (a crash before marking it dispatched).
#[derive(Clone)]
pub struct LedgerDispatcher {
    pub handler: CommandHandler<Ledger, MemoryStore>,
    pub failing: Arc<Mutex<HashSet<&'static str>>>,
    /// Commands named here are rejected (permanently).
    pub rejecting: Arc<Mutex<HashSet<&'static str>>>,
    pub hang_after_landing: bool,
    pub attempts: Arc<Mutex<Vec<String>>>,
}

impl LedgerDispatcher {
    pub fn new(store: &MemoryStore) -> Self {
        Self {
            handler: CommandHandler::new(store.clone(), ()),
            failing: Arc::default(),
            rejecting: Arc::default(),
            hang_after_landing: false,
            attempts: Arc::default(),
        }
    }

    pub fn attempts(&self) -> Vec<String> {
        self.attempts.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Dispatcher<Cmd> for LedgerDispatcher {
    async fn dispatch(&self, issued: &Issued<Cmd>) -> Result<(), DispatchError> {
        let name = issued.command.name();
        self.attempts.lock().expect("lock").push(name.to_owned());
        if self.failing.lock().expect("lock").contains(name) {
            return Err(DispatchError::transient(format!(
                "{name} service unavailable"
            )));
        }
        if self.rejecting.lock().expect("lock").contains(name) {
            return Err(DispatchError::rejected(format!("{name} refused")));
        }
        let order = issued.command.order();
        self.handler
            .handle_with(order, &name.to_owned(), issued.options())
            .await
            .map_err(DispatchError::transient)?;
        if self.hang_after_landing {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// Polls `check` (with tokio sleeps, so paused time runs) until it holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..2000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Lets a runner (default configuration) record the log up to `last`, then stops it.
pub async fn record_up_to<S: Subscriber + Clone>(store: &MemoryStore, process: &S, last: Position) {
    let runner = Runner::new(store.clone(), process.clone(), RunnerConfig::default()).spawn();
    runner
        .wait_for(last, Duration::from_secs(20))
        .await
        .expect("recorded");
    runner.stop().await;
}
