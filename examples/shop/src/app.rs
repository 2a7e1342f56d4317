//! Wiring: the three contexts on one kind of store, their read models, the saga, the
//! payment worker and the deadline ticker. Generic over the store; `main` picks it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tessera_core::{CommandHandler, EventStore, Position, SnapshotPolicy, SnapshotStore};
use tessera_projections::{RunnerConfig, RunnerHandle, Status, WaitError};
use tokio::task::JoinHandle;

use crate::fulfilment::{Fulfilment, Leg, SagaLeg};
use crate::gateway::Gateway;
use crate::inventory::Product;
use crate::metrics::Metrics;
use crate::ordering::Order;
use crate::payment::{Payment, PaymentProcessor};
use crate::reactor::Reactor;
use crate::resilience::Resilient;
use crate::settings::Settings;

mod parts;
mod rebuild;

pub use parts::{memory_parts, postgres_parts, schema_patterns, Contexts, Parts, Views};
pub use rebuild::{rebuild_named, RebuildError, RebuildState, REBUILDABLE};

/// What a runner drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read model.
    Projection,
    /// A leg of the fulfilment saga.
    Saga,
    /// The payment worker.
    Worker,
}

impl Kind {
    /// Lower-case name for the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Projection => "projection",
            Kind::Saga => "saga",
            Kind::Worker => "worker",
        }
    }
}

struct Running<S> {
    kind: Kind,
    context: &'static str,
    handle: Arc<RunnerHandle<S>>,
}

/// A running shop.
pub struct App<S> {
    /// Settings it was started with.
    pub settings: Settings,
    /// `"memory"` or `"postgres"`.
    pub backend: &'static str,
    /// The three contexts' stores.
    pub stores: Contexts<S>,
    /// Orders.
    pub orders: CommandHandler<Order, S>,
    /// Products.
    pub products: CommandHandler<Product, S>,
    /// Payments.
    pub payments: CommandHandler<Payment, S>,
    /// Read models.
    pub views: Views,
    /// The gateway route (breaker state for readiness).
    pub route: Resilient,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    runners: Mutex<BTreeMap<String, Running<S>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    rebuilds: Mutex<BTreeMap<String, RebuildState>>,
}

fn saga_config() -> RunnerConfig {
    RunnerConfig {
        batch_size: 100,
        max_attempts: 30,
        ..RunnerConfig::default()
    }
}

impl<S: EventStore + SnapshotStore> App<S> {
    /// Starts every runner and the deadline ticker on the current runtime.
    pub fn start(settings: Settings, parts: Parts<S>) -> Arc<Self> {
        let Parts {
            stores,
            views,
            saga_checkpoints,
            worker_checkpoints,
            deadlines,
            backend,
        } = parts;
        let orders = CommandHandler::new(stores.ordering.clone(), ());
        let products = CommandHandler::new(stores.inventory.clone(), ())
            .with_snapshots(stores.inventory.clone(), SnapshotPolicy::EveryNEvents(100));
        let payments = CommandHandler::new(stores.payment.clone(), ());
        let route = Resilient::new(settings.resilience);
        let saga = Arc::new(Fulfilment {
            orders: orders.clone(),
            products: products.clone(),
            payments: payments.clone(),
            deadlines,
            payment_timeout: settings.payment_timeout,
        });
        let app = Arc::new(Self {
            settings,
            backend,
            stores,
            orders,
            products,
            payments,
            views,
            route,
            metrics: Metrics::default(),
            runners: Mutex::new(BTreeMap::new()),
            tasks: Mutex::new(Vec::new()),
            rebuilds: Mutex::new(BTreeMap::new()),
        });
        app.spawn_all(&saga, saga_checkpoints, worker_checkpoints);
        app
    }

    fn spawn_all(
        self: &Arc<Self>,
        saga: &Arc<Fulfilment<S>>,
        saga_cp: crate::reactor::Checkpoints,
        worker_cp: crate::reactor::Checkpoints,
    ) {
        let config = RunnerConfig::default();
        let v = &self.views;
        let st = &self.stores;
        self.add(
            Kind::Projection,
            "ordering",
            v.orders.name(),
            v.orders.spawn(st.ordering.clone(), config),
        );
        self.add(
            Kind::Projection,
            "inventory",
            v.products.name(),
            v.products.spawn(st.inventory.clone(), config),
        );
        self.add(
            Kind::Projection,
            "inventory",
            v.reservations.name(),
            v.reservations.spawn(st.inventory.clone(), config),
        );
        self.add(
            Kind::Projection,
            "payment",
            v.payments.name(),
            v.payments.spawn(st.payment.clone(), config),
        );
        for (leg, store, context) in [
            (Leg::Ordering, &st.ordering, "ordering"),
            (Leg::Inventory, &st.inventory, "inventory"),
            (Leg::Payment, &st.payment, "payment"),
        ] {
            let reactor = Reactor::new(
                leg.name(),
                SagaLeg::new(saga.clone(), leg),
                saga_cp.clone(),
                1,
            );
            let handle =
                tessera_projections::Runner::new(store.clone(), reactor, saga_config()).spawn();
            self.add(Kind::Saga, context, leg.name().to_owned(), handle);
        }
        let worker = PaymentProcessor::new(
            self.payments.clone(),
            Gateway::new(self.settings.gateway),
            self.route.clone(),
        );
        let bulkhead = self.settings.resilience.bulkhead;
        let reactor = Reactor::new("payment_worker", worker, worker_cp, bulkhead);
        let handle =
            tessera_projections::Runner::new(st.payment.clone(), reactor, saga_config()).spawn();
        self.add(Kind::Worker, "payment", "payment_worker".to_owned(), handle);
        let ticker = tokio::spawn(tick(saga.clone(), self.settings.deadline_tick));
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(ticker);
    }

    fn add(&self, kind: Kind, context: &'static str, name: String, handle: RunnerHandle<S>) {
        let running = Running {
            kind,
            context,
            handle: Arc::new(handle),
        };
        self.lock_runners().insert(name, running);
    }

    fn lock_runners(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running<S>>> {
        self.runners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn runner(&self, name: &str) -> Option<Arc<RunnerHandle<S>>> {
        self.lock_runners().get(name).map(|r| r.handle.clone())
    }

    /// Status of every runner: (kind, context, status).
    pub fn statuses(&self) -> Vec<(Kind, &'static str, Status)> {
        self.lock_runners()
            .values()
            .map(|r| (r.kind, r.context, r.handle.status()))
            .collect()
    }

    /// Waits until the runner `name` has processed `position` of its log.
    pub async fn wait_for(
        &self,
        name: &str,
        position: Position,
        timeout: Duration,
    ) -> Result<(), WaitError> {
        match self.runner(name) {
            Some(handle) => handle.wait_for(position, timeout).await,
            None => Err(WaitError::NotRunning {
                name: name.to_owned(),
                position,
                state: "stopped",
            }),
        }
    }

    /// Whether every store answers.
    pub async fn stores_reachable(&self) -> Result<(), tessera_core::StoreError> {
        self.stores.ordering.head().await?;
        self.stores.inventory.head().await?;
        self.stores.payment.head().await?;
        Ok(())
    }

    /// Stops every runner (after its current batch) and the ticker.
    pub async fn shutdown(&self) {
        for task in std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ) {
            task.abort();
        }
        let runners = std::mem::take(&mut *self.lock_runners());
        for (_, running) in runners {
            if let Ok(handle) = Arc::try_unwrap(running.handle) {
                handle.stop().await;
            } // else: a waiting request holds it; dropping the last clone stops it
        }
    }
}

/// Fires due payment deadlines every `every`.
async fn tick<S: EventStore>(saga: Arc<Fulfilment<S>>, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(e) = saga.fire_due(SystemTime::now()).await {
            tracing::warn!(error = %e, "firing payment deadlines failed; retrying on the next tick");
        }
    }
}
