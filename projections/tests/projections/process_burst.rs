//! A process manager that issues several commands per order at once, and a dispatcher
//! that records how they went out: order, overlap, and whether each started only after
//! the previous command of its instance was marked.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tessera_core::process::{Correlation, Input, Instance, Issued, ProcessManager, Reaction};
use tessera_core::EventFilter;
use tessera_projections::process::{DispatchError, Dispatcher, ProcessStore};

use crate::process_support::Ev;

/// Step `n` of `order`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub order: String,
    pub n: u32,
}

/// An order placed → steps 1 to `steps`, issued together.
pub struct Burst {
    pub steps: u32,
}

impl ProcessManager for Burst {
    const NAME: &'static str = "burst";
    type Event = Ev;
    type State = ();
    type Command = Step;
    type Timeout = ();

    fn filter(&self) -> EventFilter {
        EventFilter::category("order")
    }

    fn correlate(&self, event: &Ev) -> Correlation {
        match event {
            Ev::Placed { order } => Correlation::Start(order.into()),
            _ => Correlation::Ignore,
        }
    }

    fn react(&self, saga: &Instance<Self>, input: Input<'_, Self>) -> Reaction<Self> {
        let Input::Event(Ev::Placed { .. }) = input else {
            return Reaction::new();
        };
        (1..=self.steps).fold(Reaction::new(), |r, n| {
            r.issue(Step {
                order: saga.id.to_string(),
                n,
            })
        })
    }
}

/// Takes `pause` per dispatch and records what it saw. Steps named in `fail_once` fail
/// transiently on their first attempt.
#[derive(Clone)]
pub struct Recorder<S> {
    pub store: S,
    pub pause: Duration,
    pub fail_once: Arc<Mutex<HashSet<(String, u32)>>>,
    /// Steps that landed, in the order they landed.
    pub landed: Arc<Mutex<Vec<(String, u32)>>>,
    /// Broken guarantees seen.
    pub violations: Arc<Mutex<Vec<String>>>,
    /// Most dispatches seen in flight at once.
    pub max: Arc<AtomicUsize>,
    current: Arc<AtomicUsize>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl<S: ProcessStore<Burst>> Recorder<S> {
    pub fn new(store: S, pause: Duration) -> Self {
        Self {
            store,
            pause,
            fail_once: Arc::default(),
            landed: Arc::default(),
            violations: Arc::default(),
            max: Arc::default(),
            current: Arc::default(),
            in_flight: Arc::default(),
        }
    }

    pub fn steps_of(&self, order: &str) -> Vec<u32> {
        let landed = self.landed.lock().expect("lock");
        landed
            .iter()
            .filter(|(o, _)| o == order)
            .map(|(_, n)| *n)
            .collect()
    }

    fn violation(&self, what: String) {
        self.violations.lock().expect("lock").push(what);
    }
}

#[async_trait]
impl<S: ProcessStore<Burst>> Dispatcher<Step> for Recorder<S> {
    async fn dispatch(&self, issued: &Issued<Step>) -> Result<(), DispatchError> {
        let Step { order, n } = issued.command.clone();
        if !self.in_flight.lock().expect("lock").insert(order.clone()) {
            self.violation(format!(
                "{order}: step {n} went while another was in flight"
            ));
        }
        let pending = self.store.pending(10_000).await;
        let earlier = pending
            .map_err(DispatchError::transient)?
            .into_iter()
            .any(|e| e.issued.instance == issued.instance && e.issued.index < issued.index);
        if earlier {
            self.violation(format!(
                "{order}: step {n} went before an earlier one was marked"
            ));
        }
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.pause).await;
        self.current.fetch_sub(1, Ordering::SeqCst);
        self.in_flight.lock().expect("lock").remove(&order);
        if self
            .fail_once
            .lock()
            .expect("lock")
            .remove(&(order.clone(), n))
        {
            return Err(DispatchError::transient(format!(
                "{order} step {n}: try again"
            )));
        }
        self.landed.lock().expect("lock").push((order, n));
        Ok(())
    }
}
