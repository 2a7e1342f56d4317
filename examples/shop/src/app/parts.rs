//! The parts a shop is made of, on the memory store or on PostgreSQL.

use tessera_core::{BoxError, MemoryStore};
use tessera_postgres::{PostgresStore, SchemaName};

use crate::fulfilment::Deadlines;
use crate::inventory::{ProductsView, ReservationsView};
use crate::ordering::OrdersView;
use crate::payment::PaymentsView;
use crate::reactor::Checkpoints;
use crate::readmodel::ViewStore;

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
    /// Checkpoints of the saga's legs.
    pub saga_checkpoints: Checkpoints,
    /// Checkpoint of the payment worker.
    pub worker_checkpoints: Checkpoints,
    /// Payment deadlines.
    pub deadlines: Deadlines,
    /// `"memory"` or `"postgres"`.
    pub backend: &'static str,
}

/// The embedded mode: three in-memory stores, read models in memory.
pub fn memory_parts(prefix: &str) -> Parts<MemoryStore> {
    Parts {
        stores: Contexts {
            ordering: MemoryStore::new(),
            inventory: MemoryStore::new(),
            payment: MemoryStore::new(),
        },
        views: Views {
            orders: ViewStore::memory(prefix),
            products: ViewStore::memory(prefix),
            reservations: ViewStore::memory(prefix),
            payments: ViewStore::memory(prefix),
        },
        saga_checkpoints: Checkpoints::memory(),
        worker_checkpoints: Checkpoints::memory(),
        deadlines: Deadlines::memory(),
        backend: "memory",
    }
}

/// The store of `context` in schema `{prefix}{context}`.
async fn store(url: &str, prefix: &str, context: &str) -> Result<PostgresStore, BoxError> {
    let schema = SchemaName::new(format!("{prefix}{context}"))?;
    Ok(PostgresStore::builder(url)
        .schema(schema)
        .pool_size(8)
        .application_name(format!("shop-{context}"))
        .build()
        .await?)
}

/// The PostgreSQL mode: each context's events in schema `{prefix}{context}`, its read
/// models in `{prefix}{context}_{model}_v{n}` (control tables in
/// `{prefix}{context}_projections`), saga checkpoints and deadlines in
/// `{prefix}fulfilment`, the payment worker's checkpoint in `{prefix}payment_worker`.
pub async fn postgres_parts(url: &str, prefix: &str) -> Result<Parts<PostgresStore>, BoxError> {
    let ordering = store(url, prefix, "ordering").await?;
    let inventory = store(url, prefix, "inventory").await?;
    let payment = store(url, prefix, "payment").await?;
    let control = |c: &str| format!("{prefix}{c}_projections");
    let views = Views {
        orders: ViewStore::postgres(ordering.pool().clone(), prefix, &control("ordering")).await?,
        products: ViewStore::postgres(inventory.pool().clone(), prefix, &control("inventory"))
            .await?,
        reservations: ViewStore::postgres(inventory.pool().clone(), prefix, &control("inventory"))
            .await?,
        payments: ViewStore::postgres(payment.pool().clone(), prefix, &control("payment")).await?,
    };
    let fulfilment = format!("{prefix}fulfilment");
    Ok(Parts {
        saga_checkpoints: Checkpoints::postgres(ordering.pool().clone(), &fulfilment).await?,
        worker_checkpoints: Checkpoints::postgres(
            payment.pool().clone(),
            &format!("{prefix}payment_worker"),
        )
        .await?,
        deadlines: Deadlines::postgres(ordering.pool().clone(), &fulfilment).await?,
        stores: Contexts {
            ordering,
            inventory,
            payment,
        },
        views,
        backend: "postgres",
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
    ]
    .iter()
    .map(|c| format!("{prefix}{c}%"))
    .collect()
}
