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

use crate::catalogue::{self, CatalogueInbox, CATALOGUE_RELAY};
use crate::commands::{command_consumer, CommandInbox, Handled, Owner};
use crate::fulfilment::{Flow, Fulfilment, FulfilmentInbox, ShopDispatcher};
use crate::gateway::Gateway;
use crate::inventory::Product;
use crate::metrics::Metrics;
use crate::ordering::Order;
use crate::payment::{Payment, PaymentProcessor};
use crate::service::Service;
use crate::settings::Settings;
use tessera_projections::integration::{
    Bus, ConsumerSpec, Inbox, InboxConfig, InboxHandle, InboxHandler, PublicEvents, Relay,
};
use tessera_projections::{Checkpoints, Reactor};

mod admission;
mod parts;
mod prices;
mod rebuild;
mod runners;
mod shutdown;
mod split;

pub use admission::Admission;
pub use parts::{
    eventstoredb_parts, memory_parts, postgres_parts, schema_patterns, Contexts, Parts, SagaStore,
    Views,
};
pub use prices::Prices;
pub use rebuild::{rebuild_named, RebuildError, RebuildState, REBUILDABLE};
use runners::Running;
pub use runners::{
    stored_inboxes, stored_statuses, Kind, RestartRunner, StoredInbox, StoredStatus,
};
pub use split::service_parts;

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
    /// Whether new orders are taken (see [`Admission`]).
    pub admission: Admission,
    /// Unit prices of the products seen to exist, by sku (see [`Prices`]).
    pub prices: Prices,
    /// The bus between the contexts.
    pub bus: Arc<dyn Bus>,
    runners: Mutex<BTreeMap<String, Running<S>>>,
    inboxes: Mutex<BTreeMap<String, (&'static str, InboxHandle)>>,
    workers: Mutex<Vec<WorkerHandle>>,
    rebuilds: Mutex<BTreeMap<String, RebuildState>>,
    draining: AtomicBool,
    /// Kept for its task: see [`Parts::analyzer`].
    _analyzer: Option<tessera_postgres::Analyzer>,
}

fn reactor_config() -> RunnerConfig {
    RunnerConfig {
        batch_size: 100,
        max_attempts: 30,
        ..RunnerConfig::default()
    }
}

/// The saga's runner takes up to 500 events a batch: its batches are set-based (a
/// statement per kind of row, not per event), so behind a backlog a larger batch
/// spreads each transaction's fixed statements over more orders.
fn saga_config() -> RunnerConfig {
    RunnerConfig {
        batch_size: 500,
        ..reactor_config()
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
            analyzer,
        } = parts;
        let cache = settings.state_cache;
        let orders = cached(CommandHandler::new(stores.ordering.clone(), ()), cache);
        // A product's state holds every order's reservation, so its snapshot grows with
        // each one; with the state cache a snapshot only serves a cold load, and one
        // every 1,000 events keeps a hot product's batches from writing it nearly every
        // time (each is written in its batch's turn on the product).
        let products = CommandHandler::new(stores.inventory.clone(), ()).with_snapshots(
            stores.inventory.clone(),
            SnapshotPolicy::EveryNEvents(1_000),
        );
        // A hot product (a flash sale) takes the reservations queued for it in batches:
        // one append per batch instead of one per order.
        let products = cached(products, cache).with_coalescing();
        let payments = cached(CommandHandler::new(stores.payment.clone(), ()), cache);
        // Before anything records: the guard below sets its breaker gauge when named.
        crate::metrics::install();
        let route = Resilience::new(settings.resilience).with_name("payment_gateway");
        let max_backlog = settings.max_backlog;
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
            admission: Admission::new(max_backlog),
            prices: Prices::default(),
            bus,
            runners: Mutex::new(BTreeMap::new()),
            inboxes: Mutex::new(BTreeMap::new()),
            workers: Mutex::new(Vec::new()),
            rebuilds: Mutex::new(BTreeMap::new()),
            draining: AtomicBool::new(false),
            _analyzer: analyzer,
        });
        // All-in-one, the saga's dispatcher waits until the owner in this process
        // handled a command (decision 14); split, the broker's confirmation is the
        // dispatch.
        let handled = app.settings.service.is_none().then(Handled::new);
        app.spawn_projections();
        app.spawn_flows(&relay_checkpoints, &inbox_positions);
        if app.settings.service == Some(Service::Inventory) {
            app.spawn_relay(
                CATALOGUE_RELAY,
                "inventory",
                catalogue::public(),
                &app.stores.inventory,
                &relay_checkpoints,
            );
        }
        if app.settings.service == Some(Service::Ordering) {
            let handler = CatalogueInbox::new(app.stores.inventory.clone());
            app.spawn_inbox(
                handler,
                "inventory",
                &inbox_positions,
                catalogue::consumer(),
            );
        }
        app.spawn_command_inboxes(&inbox_positions, handled.as_ref());
        app.spawn_saga(worker_checkpoints, handled);
        app.spawn_admission();
        app
    }

    /// Whether this process runs `context` (all three, or its service's).
    pub fn runs(&self, context: &str) -> bool {
        self.settings.runs(context)
    }

    fn spawn_projections(&self) {
        let config = RunnerConfig::default();
        let (v, st) = (&self.views, &self.stores);
        if self.runs("ordering") {
            let handle = v.orders.spawn(st.ordering.clone(), config);
            self.add(Kind::Projection, "ordering", v.orders.name(), handle);
        }
        if self.runs("inventory") {
            let handle = v.products.spawn(st.inventory.clone(), config);
            self.add(Kind::Projection, "inventory", v.products.name(), handle);
            let handle = v.reservations.spawn(st.inventory.clone(), config);
            self.add(Kind::Projection, "inventory", v.reservations.name(), handle);
        }
        if self.runs("payment") {
            let handle = v.payments.spawn(st.payment.clone(), config);
            self.add(Kind::Projection, "payment", v.payments.name(), handle);
        }
    }

    /// The relays of the inventory and payment logs to the bus, and the ordering
    /// inboxes that append what they publish to the saga's inbox streams (each where
    /// its context runs).
    fn spawn_flows(&self, relay_cp: &Checkpoints, inbox_positions: &Checkpoints) {
        let st = &self.stores;
        for flow in Flow::ALL {
            if self.runs(flow.context) {
                let source = source_of(flow, st);
                self.spawn_relay(flow.relay, flow.context, flow.public(), source, relay_cp);
            }
            if self.runs("ordering") {
                let handler = FulfilmentInbox::new(st.ordering.clone());
                self.spawn_inbox(handler, flow.context, inbox_positions, flow.consumer());
            }
        }
    }

    fn spawn_relay(
        &self,
        name: &'static str,
        context: &'static str,
        public: PublicEvents,
        source: &S,
        checkpoints: &Checkpoints,
    ) {
        let bus = Arc::clone(&self.bus);
        let relay = Relay::new(name, public, source.clone(), bus, checkpoints.clone());
        let handle = Runner::new(source.clone(), relay, relay_config()).spawn();
        self.add(Kind::Relay, context, name.to_owned(), handle);
    }

    /// An inbox of `context`'s messages, trying each 30 times (backing off up to 5 s,
    /// about two minutes in all: long enough to ride out a restart of the database)
    /// before it stops on it.
    fn spawn_inbox<H: InboxHandler>(
        &self,
        handler: H,
        context: &'static str,
        positions: &Checkpoints,
        consumer: ConsumerSpec,
    ) {
        let name = consumer.name.clone();
        let config = InboxConfig {
            max_attempts: 30,
            concurrency: INBOX_CONCURRENCY,
            ..InboxConfig::new(consumer)
        };
        let inbox = Inbox::new(Arc::clone(&self.bus), handler, positions.clone(), config);
        self.lock_inboxes().insert(name, (context, inbox.spawn()));
    }

    /// The command inboxes of inventory and payment (where they run): each runs the
    /// saga's command messages through its context's command handler, and tells
    /// `handled` when there is one.
    fn spawn_command_inboxes(&self, positions: &Checkpoints, handled: Option<&Handled>) {
        let st = &self.stores;
        if self.runs("inventory") {
            let inventory = CommandInbox::new(self.products.clone(), st.inventory.clone());
            self.spawn_command_inbox(inventory, handled, positions);
        }
        if self.runs("payment") {
            let payment = CommandInbox::new(self.payments.clone(), st.payment.clone());
            self.spawn_command_inbox(payment, handled, positions);
        }
    }

    fn spawn_command_inbox<A: Owner>(
        &self,
        handler: CommandInbox<A, S>,
        handled: Option<&Handled>,
        positions: &Checkpoints,
    ) {
        let handler = match handled {
            Some(handled) => handler.reporting_to(handled.clone()),
            None => handler,
        };
        self.spawn_inbox(handler, A::CONTEXT, positions, command_consumer(A::CONTEXT));
    }

    /// The saga on the ordering log with its outbox worker (sending inventory's and
    /// payment's commands over the bus and, all-in-one, waiting until their owners here
    /// handled them), and the payment worker (each where its context runs).
    fn spawn_saga(&self, worker_cp: Checkpoints, handled: Option<Handled>) {
        if self.runs("ordering") {
            self.spawn_fulfilment(handled);
        }
        if self.runs("payment") {
            self.spawn_payment_worker(worker_cp);
        }
    }

    fn spawn_fulfilment(&self, handled: Option<Handled>) {
        let st = &self.stores;
        let dispatcher = Arc::new(ShopDispatcher {
            orders: self.orders.clone(),
            bus: Arc::clone(&self.bus),
            handled,
        });
        let config = ProcessConfig {
            poll_interval: self.settings.deadline_tick,
            max_concurrent_dispatches: DISPATCHES_IN_FLIGHT,
            ..ProcessConfig::default()
        };
        let (runner, worker) = match &self.saga {
            SagaStore::Memory(m) => run_saga(st.ordering.clone(), m.clone(), dispatcher, config),
            SagaStore::Pg(p) => run_saga(st.ordering.clone(), p.clone(), dispatcher, config),
        };
        self.add(Kind::Saga, "ordering", Fulfilment::NAME.to_owned(), runner);
        self.lock_workers().push(worker);
    }

    fn spawn_payment_worker(&self, worker_cp: Checkpoints) {
        let st = &self.stores;
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

/// Commands the saga has in flight at once. All-in-one, a dispatch lasts until the
/// owner here handled the command, so this bounds how many commands the owners' inboxes
/// are handed at once, and how many a hot product's reservations coalesce.
const DISPATCHES_IN_FLIGHT: usize = 256;

/// Source streams (or, for commands, messages) each inbox handles at once: as many as
/// the saga may have in flight.
const INBOX_CONCURRENCY: usize = DISPATCHES_IN_FLIGHT;

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
    let runner = Runner::new(ordering, process.clone(), saga_config()).spawn();
    let worker = Worker::new(process, dispatcher, config).spawn();
    (runner, worker)
}
