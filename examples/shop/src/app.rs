//! Wiring: the three contexts on one kind of store, their read models, the saga, the
//! relays and inboxes between the contexts (events to the saga, its commands to
//! inventory and payment), and the payment worker. Generic over the
//! store; `main` picks it.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use tessera_core::process::ProcessManager;
use tessera_core::{Aggregate, CommandHandler, EventStore, SnapshotPolicy, SnapshotStore};
use tessera_projections::process::{ProcessConfig, ProcessStore, Worker, WorkerHandle};
use tessera_projections::resilience::Resilience;
use tessera_projections::{Runner, RunnerConfig, RunnerHandle};

use crate::commands::{command_consumer, CommandInbox, Handled, Owner};
use crate::fulfilment::{Flow, Fulfilment, FulfilmentInbox, ShopDispatcher};
use crate::gateway::Gateway;
use crate::inventory::Product;
use crate::metrics::Metrics;
use crate::ordering::Order;
use crate::payment::{Payment, PaymentProcessor};
use crate::settings::Settings;
use tessera_projections::integration::{Bus, Inbox, InboxConfig, InboxHandle, Relay};
use tessera_projections::{Checkpoints, Reactor};

mod parts;
mod rebuild;
mod runners;
mod shutdown;

pub use parts::{
    eventstoredb_parts, memory_parts, postgres_parts, schema_patterns, Contexts, Parts, SagaStore,
    Views,
};
pub use rebuild::{rebuild_named, RebuildError, RebuildState, REBUILDABLE};
use runners::Running;
pub use runners::{stored_inboxes, stored_statuses, Kind, StoredInbox, StoredStatus};

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
    /// The saga's instances.
    pub saga: SagaStore,
    /// The simulated payment gateway the payment worker charges (clones share its ledger).
    pub gateway: Gateway,
    /// The guarded gateway route (breaker state for readiness).
    pub route: Resilience,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// The bus between the contexts.
    pub bus: Arc<dyn Bus>,
    runners: Mutex<BTreeMap<String, Running<S>>>,
    inboxes: Mutex<BTreeMap<String, (&'static str, InboxHandle)>>,
    workers: Mutex<Vec<WorkerHandle>>,
    rebuilds: Mutex<BTreeMap<String, RebuildState>>,
    draining: AtomicBool,
}

fn reactor_config() -> RunnerConfig {
    RunnerConfig {
        batch_size: 100,
        max_attempts: 30,
        ..RunnerConfig::default()
    }
}

impl<S: EventStore + SnapshotStore> App<S> {
    /// Starts every runner and worker on the current runtime, with a simulated gateway
    /// behaving as `settings.gateway` says.
    pub fn start(settings: Settings, parts: Parts<S>) -> Arc<Self> {
        let gateway = Gateway::new(settings.gateway);
        Self::start_with_gateway(settings, parts, gateway)
    }

    /// [`App::start`] charging through `gateway` (`settings.gateway` is not used). The
    /// gateway stands for a service outside the shop: a clone handed to a second
    /// instance (a restart after a crash, in tests) shares its ledger, as a real gateway
    /// outlives the shop's process.
    pub fn start_with_gateway(settings: Settings, parts: Parts<S>, gateway: Gateway) -> Arc<Self> {
        let Parts {
            stores,
            views,
            saga,
            bus,
            relay_checkpoints,
            inbox_positions,
            worker_checkpoints,
            backend,
        } = parts;
        let cache = settings.state_cache;
        let orders = cached(CommandHandler::new(stores.ordering.clone(), ()), cache);
        let products = CommandHandler::new(stores.inventory.clone(), ())
            .with_snapshots(stores.inventory.clone(), SnapshotPolicy::EveryNEvents(100));
        let products = cached(products, cache);
        let payments = cached(CommandHandler::new(stores.payment.clone(), ()), cache);
        let route = Resilience::new(settings.resilience);
        let app = Arc::new(Self {
            settings,
            backend,
            stores,
            orders,
            products,
            payments,
            views,
            saga,
            gateway,
            route,
            metrics: Metrics::default(),
            bus,
            runners: Mutex::new(BTreeMap::new()),
            inboxes: Mutex::new(BTreeMap::new()),
            workers: Mutex::new(Vec::new()),
            rebuilds: Mutex::new(BTreeMap::new()),
            draining: AtomicBool::new(false),
        });
        let handled = Handled::new();
        app.spawn_projections();
        app.spawn_flows(&relay_checkpoints, &inbox_positions);
        app.spawn_command_inboxes(&inbox_positions, &handled);
        app.spawn_saga(worker_checkpoints, handled);
        app
    }

    fn spawn_projections(&self) {
        let config = RunnerConfig::default();
        let (v, st) = (&self.views, &self.stores);
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
    }

    /// The relays of the inventory and payment logs to the bus, and the ordering
    /// inboxes that append what they publish to the saga's inbox streams.
    fn spawn_flows(&self, relay_cp: &Checkpoints, inbox_positions: &Checkpoints) {
        let st = &self.stores;
        for flow in Flow::ALL {
            let source = source_of(flow, st);
            let relay = Relay::new(
                flow.relay,
                flow.public(),
                source.clone(),
                Arc::clone(&self.bus),
                relay_cp.clone(),
            );
            let handle = Runner::new(source.clone(), relay, relay_config()).spawn();
            self.add(Kind::Relay, flow.context, flow.relay.to_owned(), handle);
            let inbox = Inbox::new(
                Arc::clone(&self.bus),
                FulfilmentInbox::new(st.ordering.clone()),
                inbox_positions.clone(),
                inbox_config(flow),
            );
            self.lock_inboxes()
                .insert(flow.inbox.to_owned(), (flow.context, inbox.spawn()));
        }
    }

    /// The command inboxes of inventory and payment: each runs the saga's command
    /// messages through its context's command handler, and tells `handled`.
    fn spawn_command_inboxes(&self, positions: &Checkpoints, handled: &Handled) {
        let st = &self.stores;
        let inventory = CommandInbox::new(self.products.clone(), st.inventory.clone());
        let payment = CommandInbox::new(self.payments.clone(), st.payment.clone());
        self.spawn_command_inbox(inventory.reporting_to(handled.clone()), positions);
        self.spawn_command_inbox(payment.reporting_to(handled.clone()), positions);
    }

    fn spawn_command_inbox<A: Owner>(&self, handler: CommandInbox<A, S>, positions: &Checkpoints) {
        let consumer = command_consumer(A::CONTEXT);
        let name = consumer.name.clone();
        let config = InboxConfig {
            max_attempts: 30,
            ..InboxConfig::new(consumer)
        };
        let inbox = Inbox::new(Arc::clone(&self.bus), handler, positions.clone(), config);
        self.lock_inboxes()
            .insert(name, (A::CONTEXT, inbox.spawn()));
    }

    /// The saga on the ordering log with its outbox worker (sending inventory's and
    /// payment's commands over the bus and waiting until their owners here handled
    /// them), and the payment worker.
    fn spawn_saga(&self, worker_cp: Checkpoints, handled: Handled) {
        let st = &self.stores;
        let dispatcher = Arc::new(ShopDispatcher {
            orders: self.orders.clone(),
            bus: Arc::clone(&self.bus),
            handled: Some(handled),
        });
        let config = ProcessConfig {
            poll_interval: self.settings.deadline_tick,
            ..ProcessConfig::default()
        };
        let (runner, worker) = match &self.saga {
            SagaStore::Memory(m) => run_saga(st.ordering.clone(), m.clone(), dispatcher, config),
            SagaStore::Pg(p) => run_saga(st.ordering.clone(), p.clone(), dispatcher, config),
        };
        self.add(Kind::Saga, "ordering", Fulfilment::NAME.to_owned(), runner);
        self.lock_workers().push(worker);
        let worker = PaymentProcessor::new(
            self.payments.clone(),
            self.gateway.clone(),
            self.route.clone(),
        );
        let concurrency = self.settings.resilience.max_concurrent;
        let reactor = Reactor::new(PAYMENT_WORKER, worker, worker_cp, concurrency);
        let handle = Runner::new(st.payment.clone(), reactor, reactor_config()).spawn();
        self.add(Kind::Worker, "payment", PAYMENT_WORKER.to_owned(), handle);
    }
}

/// The payment worker's name: in the status, and of its checkpoint.
pub const PAYMENT_WORKER: &str = "payment_worker";

/// The log a flow's relay reads.
pub(crate) fn source_of<S>(flow: Flow, st: &Contexts<S>) -> &S {
    if flow.context == Flow::INVENTORY.context {
        &st.inventory
    } else {
        &st.payment
    }
}

/// Relays publish up to 500 events per confirmation round; a publish the broker does
/// not confirm is retried for as long as it takes.
fn relay_config() -> RunnerConfig {
    RunnerConfig {
        batch_size: 500,
        max_attempts: 30,
        ..RunnerConfig::default()
    }
}

/// An inbox tries a message 30 times (backing off up to 5 s, about two minutes in all:
/// long enough to ride out a restart of the ordering database) before it stops on it.
fn inbox_config(flow: Flow) -> InboxConfig {
    InboxConfig {
        max_attempts: 30,
        ..InboxConfig::new(flow.consumer())
    }
}

/// `handler` keeping up to `capacity` aggregate states between commands (0: none).
fn cached<A: Aggregate, S: EventStore>(
    handler: CommandHandler<A, S>,
    capacity: usize,
) -> CommandHandler<A, S> {
    if capacity == 0 {
        handler
    } else {
        handler.with_state_cache(capacity)
    }
}

/// Runs the saga's process store from the ordering log, and its outbox worker.
fn run_saga<S: EventStore, P: ProcessStore<Fulfilment>>(
    ordering: S,
    process: P,
    dispatcher: Arc<ShopDispatcher<S>>,
    config: ProcessConfig,
) -> (RunnerHandle<S>, WorkerHandle) {
    let runner = Runner::new(ordering, process.clone(), reactor_config()).spawn();
    let worker = Worker::new(process, dispatcher, config).spawn();
    (runner, worker)
}
