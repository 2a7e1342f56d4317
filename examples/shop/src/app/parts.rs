//! The parts a shop is made of, on the memory store or on PostgreSQL.

use std::sync::Arc;

use tessera_core::{BoxError, MemoryStore};
use tessera_eventstoredb::EventStoreDbStore;
use tessera_postgres::{Analyzer, AnalyzerConfig, PostgresStore, SchemaName};
use tessera_projections::integration::{Bus, MemoryBus};

use tessera_core::process::{Instance, InstanceId};
use tessera_projections::process::{Backlog, MemoryProcess, PgProcess, ProcessStore};
use tessera_projections::Subscriber;

use crate::fulfilment::Fulfilment;
use crate::inventory::{ProductsView, ReservationsView};
use crate::ordering::OrdersView;
use crate::payment::PaymentsView;
use tessera_projections::{Checkpoints, MemoryCheckpoints, PgCheckpoints, ViewStore};

/// One store per bounded context.
#[derive(Debug, Clone)]
pub struct Contexts<S> {
    /// Orders.
    pub ordering: S,
    /// Products and stock.
    pub inventory: S,
    /// Payments.
    pub payment: S,
}

/// The read models.
pub struct Views {
    /// Orders (ordering).
    pub orders: ViewStore<OrdersView>,
    /// Stock per product (inventory).
    pub products: ViewStore<ProductsView>,
    /// Reservations per order (inventory).
    pub reservations: ViewStore<ReservationsView>,
    /// Payments per order (payment).
    pub payments: ViewStore<PaymentsView>,
}

/// Everything [`App::start`](super::App::start) needs.
pub struct Parts<S> {
    /// The stores.
    pub stores: Contexts<S>,
    /// The read models.
    pub views: Views,
    /// The saga's instances, outbox and deadlines.
    pub saga: SagaStore,
    /// The bus between the contexts.
    pub bus: Arc<dyn Bus>,
    /// Checkpoints of the relays. On the in-memory bus they are in memory too: the bus
    /// forgets its messages when the process ends, so a relay that remembered having
    /// published them would leave the inbox without them; at each start the relays
    /// publish their context's public events again from the beginning, and the inboxes
    /// acknowledge those they handled without effect.
    pub relay_checkpoints: Checkpoints,
    /// Where the inboxes keep the version handled last per source stream.
    pub inbox_positions: Checkpoints,
    /// Checkpoint of the payment worker.
    pub worker_checkpoints: Checkpoints,
    /// `"memory"`, `"postgres"` or `"eventstoredb"`.
    pub backend: &'static str,
    /// Keeps the statistics of the shop's PostgreSQL tables up with their growth, so
    /// plans cached while they were nearly empty are made again ([`Analyzer`]; `None` in memory).
    pub analyzer: Option<Analyzer>,
}

/// An [`Analyzer`] of the schemas matching `schemas` on `pool`: a flash sale on a new
/// database takes a table of inbox positions, saga records and log rows from empty to
/// thousands of rows in seconds, faster than autovacuum's rounds.
pub(super) fn analyzer(pool: deadpool_postgres::Pool, schemas: Vec<String>) -> Analyzer {
    Analyzer::spawn(pool, schemas, AnalyzerConfig::default())
}

/// Where the saga's process runtime keeps its instances.
#[derive(Clone)]
pub enum SagaStore {
    /// In memory.
    Memory(MemoryProcess<Fulfilment>),
    /// In PostgreSQL.
    Pg(PgProcess<Fulfilment>),
}

impl SagaStore {
    /// Where the saga's runner stands in the ordering log.
    pub async fn checkpoint(&self) -> Result<tessera_core::Position, BoxError> {
        match self {
            SagaStore::Memory(m) => Subscriber::checkpoint(m).await,
            SagaStore::Pg(p) => Subscriber::checkpoint(p).await,
        }
    }

    /// What waits in the saga's outbox: commands issued and not dispatched yet (a
    /// saga can be caught up with its log while its commands queue).
    pub async fn backlog(&self) -> Result<Backlog, BoxError> {
        match self {
            SagaStore::Memory(m) => m.backlog().await,
            SagaStore::Pg(p) => p.backlog().await,
        }
    }

    /// How many commands wait in the saga's outbox (without the rest of the backlog).
    pub async fn waiting(&self) -> Result<u64, BoxError> {
        match self {
            SagaStore::Memory(m) => m.waiting().await,
            SagaStore::Pg(p) => p.waiting().await,
        }
    }

    /// The events of the ordering log the saga reads.
    pub fn filter(&self) -> tessera_core::EventFilter {
        match self {
            SagaStore::Memory(m) => Subscriber::filter(m),
            SagaStore::Pg(p) => Subscriber::filter(p),
        }
    }

    /// The saga instance of `order_id`.
    pub async fn instance(&self, order_id: &str) -> Result<Option<Instance<Fulfilment>>, BoxError> {
        let id = InstanceId::from(order_id);
        match self {
            SagaStore::Memory(m) => m.instance(&id).await,
            SagaStore::Pg(p) => p.instance(&id).await,
        }
    }
}

/// The embedded mode: three in-memory stores, read models in memory.
pub fn memory_parts(prefix: &str, saga: Fulfilment) -> Parts<MemoryStore> {
    let stores = Contexts {
        ordering: MemoryStore::new(),
        inventory: MemoryStore::new(),
        payment: MemoryStore::new(),
    };
    in_memory(stores, prefix, saga, "memory")
}

/// `stores` with read models, saga state and checkpoints in memory.
fn in_memory<S>(
    stores: Contexts<S>,
    prefix: &str,
    saga: Fulfilment,
    backend: &'static str,
) -> Parts<S> {
    Parts {
        stores,
        views: Views {
            orders: ViewStore::memory(prefix),
            products: ViewStore::memory(prefix),
            reservations: ViewStore::memory(prefix),
            payments: ViewStore::memory(prefix),
        },
        saga: SagaStore::Memory(MemoryProcess::new(saga)),
        bus: Arc::new(MemoryBus::new()),
        relay_checkpoints: Checkpoints::Memory(MemoryCheckpoints::new()),
        inbox_positions: Checkpoints::Memory(MemoryCheckpoints::new()),
        worker_checkpoints: Checkpoints::Memory(MemoryCheckpoints::new()),
        backend,
        analyzer: None,
    }
}

/// Events in EventStoreDB at `esdb_url`, each context's streams under the prefix
/// `{prefix}{context}:`; read models, saga state and checkpoints in PostgreSQL at
/// `database_url` when given (schemas as in [`postgres_parts`]), else in memory.
pub async fn eventstoredb_parts(
    esdb_url: &str,
    database_url: Option<&str>,
    prefix: &str,
    saga: Fulfilment,
) -> Result<Parts<EventStoreDbStore>, BoxError> {
    let store =
        |c: &str| EventStoreDbStore::connect_with_prefix(esdb_url, &format!("{prefix}{c}:"));
    let stores = Contexts {
        ordering: store("ordering")?,
        inventory: store("inventory")?,
        payment: store("payment")?,
    };
    let Some(url) = database_url else {
        return Ok(in_memory(stores, prefix, saga, "eventstoredb"));
    };
    // TLS as the URL's sslmode asks, like the store's own pools.
    let (config, tls) = tessera_postgres::tls::connector_for(url)?;
    let pool = deadpool_postgres::Pool::builder(deadpool_postgres::Manager::new(config, tls))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?;
    let control = |c: &str| format!("{prefix}{c}_projections");
    Ok(Parts {
        views: Views {
            orders: ViewStore::postgres(pool.clone(), prefix, &control("ordering")).await?,
            products: ViewStore::postgres(pool.clone(), prefix, &control("inventory")).await?,
            reservations: ViewStore::postgres(pool.clone(), prefix, &control("inventory")).await?,
            payments: ViewStore::postgres(pool.clone(), prefix, &control("payment")).await?,
        },
        saga: SagaStore::Pg(
            PgProcess::new(pool.clone(), saga, &format!("{prefix}fulfilment")).await?,
        ),
        bus: Arc::new(MemoryBus::new()),
        relay_checkpoints: Checkpoints::Memory(MemoryCheckpoints::new()),
        inbox_positions: pg_checkpoints(pool.clone(), &format!("{prefix}fulfilment_inbox")).await?,
        worker_checkpoints: pg_checkpoints(pool.clone(), &format!("{prefix}payment_worker"))
            .await?,
        stores,
        backend: "eventstoredb",
        analyzer: Some(analyzer(pool, schema_patterns(prefix))),
    })
}

/// The store of `context` in schema `{prefix}{context}`, listening for other processes'
/// appends on `listen_with`'s connection if given (one LISTEN connection for the
/// process's stores: the server spends a transaction per `NOTIFY` on each).
pub(super) async fn store(
    url: &str,
    prefix: &str,
    context: &str,
    listen_with: Option<&PostgresStore>,
) -> Result<PostgresStore, BoxError> {
    let schema = SchemaName::new(format!("{prefix}{context}"))?;
    let mut builder = PostgresStore::builder(url)
        .schema(schema)
        .pool_size(8)
        .application_name(format!("shop-{context}"));
    if let Some(other) = listen_with {
        builder = builder.listen_with(other);
    }
    Ok(builder.build().await?)
}

/// The PostgreSQL mode: each context's events in schema `{prefix}{context}`, its read
/// models in `{prefix}{context}_{model}_v{n}` (control tables in
/// `{prefix}{context}_projections`), the saga's instances, outbox and deadlines in
/// `{prefix}fulfilment`, the inboxes' positions in `{prefix}fulfilment_inbox`,
/// the payment worker's in `{prefix}payment_worker`.
pub async fn postgres_parts(
    url: &str,
    prefix: &str,
    saga: Fulfilment,
) -> Result<Parts<PostgresStore>, BoxError> {
    let ordering = store(url, prefix, "ordering", None).await?;
    let inventory = store(url, prefix, "inventory", Some(&ordering)).await?;
    let payment = store(url, prefix, "payment", Some(&ordering)).await?;
    let control = |c: &str| format!("{prefix}{c}_projections");
    let views = Views {
        orders: ViewStore::postgres(ordering.pool().clone(), prefix, &control("ordering")).await?,
        products: ViewStore::postgres(inventory.pool().clone(), prefix, &control("inventory"))
            .await?,
        reservations: ViewStore::postgres(inventory.pool().clone(), prefix, &control("inventory"))
            .await?,
        payments: ViewStore::postgres(payment.pool().clone(), prefix, &control("payment")).await?,
    };
    let pool = ordering.pool().clone();
    Ok(Parts {
        saga: SagaStore::Pg(
            PgProcess::new(pool.clone(), saga, &format!("{prefix}fulfilment")).await?,
        ),
        bus: Arc::new(MemoryBus::new()),
        relay_checkpoints: Checkpoints::Memory(MemoryCheckpoints::new()),
        inbox_positions: pg_checkpoints(pool.clone(), &format!("{prefix}fulfilment_inbox")).await?,
        worker_checkpoints: pg_checkpoints(
            payment.pool().clone(),
            &format!("{prefix}payment_worker"),
        )
        .await?,
        stores: Contexts {
            ordering,
            inventory,
            payment,
        },
        views,
        backend: "postgres",
        analyzer: Some(analyzer(pool, schema_patterns(prefix))),
    })
}

/// Every schema name a shop with `prefix` may create (for cleanup in tests and tools).
pub fn schema_patterns(prefix: &str) -> Vec<String> {
    [
        "ordering",
        "inventory",
        "payment",
        "fulfilment",
        "payment_worker",
        "catalogue",
    ]
    .iter()
    .map(|c| format!("{prefix}{c}%"))
    .collect()
}

/// Checkpoints in `schema`'s `checkpoints` table (created if missing).
pub(super) async fn pg_checkpoints(
    pool: deadpool_postgres::Pool,
    schema: &str,
) -> Result<Checkpoints, BoxError> {
    Ok(PgCheckpoints::new(pool, schema).await?.into())
}
