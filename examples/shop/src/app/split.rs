//! The parts of one service of the split shop (`serve --service`): its own context's
//! log, read models, checkpoints and positions in its own database, and a broker as the
//! bus. Nothing of another context is opened.

use std::sync::Arc;

use tessera_core::BoxError;
use tessera_postgres::PostgresStore;
use tessera_projections::integration::Bus;
use tessera_projections::process::{MemoryProcess, PgProcess};
use tessera_projections::{Checkpoints, MemoryCheckpoints, View, ViewStore};

use super::parts::{analyzer, pg_checkpoints, store, Contexts, Parts, SagaStore, Views};
use crate::fulfilment::Fulfilment;
use crate::service::Service;

/// The parts of `service` on the database at `url` (schemas prefixed with `prefix`),
/// talking to the other services through `bus`:
///
/// - its log in schema `{prefix}{service}`, its read models in
///   `{prefix}{service}_{model}_v{n}` (control tables in `{prefix}{service}_projections`);
/// - its relays' checkpoints in `{prefix}{service}_relays` (ordering has none), its inboxes' positions in
///   `{prefix}{service}_inbox` (ordering: `{prefix}fulfilment_inbox`, as all-in-one);
/// - ordering: the saga's instances in `{prefix}fulfilment`, the catalogue copy's log in
///   `{prefix}catalogue`; payment: the payment worker's checkpoint in
///   `{prefix}payment_worker`.
///
/// [`Parts`] names a store per context: the contexts this service does not run are
/// given its own store (and read models in memory) so that the shapes match, and
/// [`App`](super::App) never touches them: it starts only `service`'s runners, inboxes
/// and routes (ordering's products are its catalogue copy).
pub async fn service_parts(
    url: &str,
    prefix: &str,
    service: Service,
    bus: Arc<dyn Bus>,
    saga: Fulfilment,
) -> Result<Parts<PostgresStore>, BoxError> {
    let name = service.as_str();
    let own = store(url, prefix, name, None).await?;
    let pool = own.pool().clone();
    let control = format!("{prefix}{name}_projections");
    let views = Views {
        orders: view(service == Service::Ordering, &own, prefix, &control).await?,
        products: view(service == Service::Inventory, &own, prefix, &control).await?,
        reservations: view(service == Service::Inventory, &own, prefix, &control).await?,
        payments: view(service == Service::Payment, &own, prefix, &control).await?,
    };
    let stores = match service {
        Service::Ordering => Contexts {
            inventory: store(url, prefix, "catalogue", Some(&own)).await?,
            payment: own.clone(),
            ordering: own,
        },
        Service::Inventory | Service::Payment => Contexts {
            ordering: own.clone(),
            inventory: own.clone(),
            payment: own,
        },
    };
    let saga = match service {
        Service::Ordering => {
            SagaStore::Pg(PgProcess::new(pool.clone(), saga, &format!("{prefix}fulfilment")).await?)
        }
        Service::Inventory | Service::Payment => SagaStore::Memory(MemoryProcess::new(saga)),
    };
    let inbox_schema = match service {
        Service::Ordering => format!("{prefix}fulfilment_inbox"),
        _ => format!("{prefix}{name}_inbox"),
    };
    let worker_checkpoints = match service {
        Service::Payment => {
            pg_checkpoints(pool.clone(), &format!("{prefix}payment_worker")).await?
        }
        _ => Checkpoints::Memory(MemoryCheckpoints::new()),
    };
    Ok(Parts {
        views,
        saga,
        bus,
        relay_checkpoints: match service {
            Service::Ordering => Checkpoints::Memory(MemoryCheckpoints::new()), // no relay
            _ => pg_checkpoints(pool.clone(), &format!("{prefix}{name}_relays")).await?,
        },
        inbox_positions: pg_checkpoints(pool.clone(), &inbox_schema).await?,
        worker_checkpoints,
        stores,
        backend: "postgres",
        // This service's schemas only: each service's database is its own, but the
        // services may share one server and one database in a test.
        analyzer: Some(analyzer(pool, own_schemas(service, prefix))),
    })
}

/// The `LIKE` patterns of the schemas `service` creates.
fn own_schemas(service: Service, prefix: &str) -> Vec<String> {
    let contexts: &[&str] = match service {
        Service::Ordering => &["ordering", "catalogue", "fulfilment"],
        Service::Inventory => &["inventory"],
        Service::Payment => &["payment"],
    };
    contexts.iter().map(|c| format!("{prefix}{c}%")).collect()
}

/// A read model in PostgreSQL when this service owns it, else in memory (never fed).
async fn view<V: View>(
    owned: bool,
    own: &PostgresStore,
    prefix: &str,
    control: &str,
) -> Result<ViewStore<V>, BoxError> {
    if owned {
        Ok(ViewStore::postgres(own.pool().clone(), prefix, control).await?)
    } else {
        Ok(ViewStore::memory(prefix))
    }
}
