//! The shop's runners and workers: registering, status, read-your-writes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tessera_core::process::ProcessManager;
use tessera_core::{BoxError, EventFilter, EventReader, EventStore, Position, SnapshotStore};
use tessera_projections::process::WorkerHandle;
use tessera_projections::{Lag, RunnerHandle, Status, WaitError};

use super::{source_of, App, Parts, PAYMENT_WORKER};
use crate::fulfilment::{Flow, Fulfilment};
use crate::payment::worker_filter;
use crate::service::Service;
use tessera_projections::integration::{InboxHandle, InboxStatus};
use tessera_projections::process::Backlog;
use tessera_projections::Checkpoints;
use tessera_projections::{CheckpointStore, View, ViewStore};

/// Why [`App::restart`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RestartRunner {
    /// No runner has this name.
    #[error("no runner named {0:?}")]
    Unknown(String),
    /// It is not failed.
    #[error(transparent)]
    NotFailed(tessera_projections::RestartError),
}

/// What a runner drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A read model.
    Projection,
    /// The fulfilment saga.
    Saga,
    /// A relay publishing a context's public events to the bus.
    Relay,
    /// The payment worker.
    Worker,
}

impl Kind {
    /// Lower-case name for the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Projection => "projection",
            Kind::Saga => "saga",
            Kind::Relay => "relay",
            Kind::Worker => "worker",
        }
    }
}

/// One runner's standing read from its stored checkpoint, with no runner running: what
/// `shop projections` prints. Its lag is measured as a running runner measures its own
/// ([`Lag::measure`] with the runner's filter), so it matches the admin status route.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStatus {
    /// What it drives.
    pub kind: Kind,
    /// The context whose log it reads.
    pub context: &'static str,
    /// Its name, as the admin status route shows it.
    pub name: String,
    /// Its stored checkpoint.
    pub checkpoint: Position,
    /// The head of its log and how far the checkpoint trails it.
    pub lag: Lag,
    /// The saga's commands waiting to be dispatched (the saga's row only).
    pub backlog: Option<Backlog>,
}

async fn stored<S: EventReader>(
    kind: Kind,
    context: &'static str,
    name: String,
    checkpoint: Position,
    filter: EventFilter,
    store: &S,
) -> Result<StoredStatus, BoxError> {
    let lag = Lag::measure(store, checkpoint, filter).await?;
    Ok(StoredStatus {
        kind,
        context,
        name,
        checkpoint,
        lag,
        backlog: None,
    })
}

async fn view<V: View, S: EventReader>(
    context: &'static str,
    view: &ViewStore<V>,
    store: &S,
) -> Result<StoredStatus, BoxError> {
    let checkpoint = view.checkpoint().await?;
    stored(
        Kind::Projection,
        context,
        view.name(),
        checkpoint,
        view.filter(),
        store,
    )
    .await
}

/// Every runner an [`App`] started on `parts` runs (read models, saga, relays, payment
/// worker), with its stored checkpoint and lag: the entries and figures of the admin
/// status route, without a server. Relays are listed only when their checkpoints are
/// stored: on the in-memory bus they are not (see [`Parts::relay_checkpoints`]), and an
/// inbox's position is the broker's, so both show only in a running server's status.
pub async fn stored_statuses<S: EventStore>(
    parts: &Parts<S>,
) -> Result<Vec<StoredStatus>, BoxError> {
    let (v, st) = (&parts.views, &parts.stores);
    let saga = &parts.saga;
    let mut rows = vec![
        view("ordering", &v.orders, &st.ordering).await?,
        view("inventory", &v.products, &st.inventory).await?,
        view("inventory", &v.reservations, &st.inventory).await?,
        view("payment", &v.payments, &st.payment).await?,
        StoredStatus {
            backlog: Some(saga.backlog().await?),
            ..stored(
                Kind::Saga,
                "ordering",
                Fulfilment::NAME.to_owned(),
                saga.checkpoint().await?,
                saga.filter(),
                &st.ordering,
            )
            .await?
        },
    ];
    if !matches!(parts.relay_checkpoints, Checkpoints::Memory(_)) {
        for flow in Flow::ALL {
            let checkpoint = parts.relay_checkpoints.load(flow.relay).await?;
            let filter = flow.public().filter();
            let name = flow.relay.to_owned();
            let source = source_of(flow, st);
            rows.push(stored(Kind::Relay, flow.context, name, checkpoint, filter, source).await?);
        }
    }
    let checkpoint = parts.worker_checkpoints.load(PAYMENT_WORKER).await?;
    let name = PAYMENT_WORKER.to_owned();
    rows.push(
        stored(
            Kind::Worker,
            "payment",
            name,
            checkpoint,
            worker_filter(),
            &st.payment,
        )
        .await?,
    );
    Ok(rows)
}

/// What is stored of an inbox: the source streams it keeps a position for, and when
/// one last moved (its lag is the broker's, shown by a running server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInbox {
    /// The inbox's durable consumer name.
    pub name: &'static str,
    /// The context whose events it reads.
    pub context: &'static str,
    /// Source streams with a stored position.
    pub streams: u64,
    /// When a position last moved.
    pub last_moved: Option<std::time::SystemTime>,
}

/// Each event inbox's stored positions, when they are stored (in PostgreSQL). The
/// command inboxes of inventory and payment store none: commands are not ordered per
/// stream, and a repeat is absorbed by the owner's idempotency key (they show in a
/// running server's status).
pub async fn stored_inboxes<S>(parts: &Parts<S>) -> Result<Vec<StoredInbox>, BoxError> {
    let Checkpoints::Postgres(positions) = &parts.inbox_positions else {
        return Ok(Vec::new());
    };
    let mut rows = Vec::new();
    for flow in Flow::ALL {
        let (streams, last_moved) = positions.summary(&format!("{}:", flow.inbox)).await?;
        rows.push(StoredInbox {
            name: flow.inbox,
            context: flow.context,
            streams,
            last_moved,
        });
    }
    Ok(rows)
}

pub(super) struct Running<S> {
    kind: Kind,
    context: &'static str,
    pub(super) handle: Arc<RunnerHandle<S>>,
}

impl<S: EventStore + SnapshotStore> App<S> {
    pub(super) fn lock_workers(&self) -> std::sync::MutexGuard<'_, Vec<WorkerHandle>> {
        self.workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn add(
        &self,
        kind: Kind,
        context: &'static str,
        name: String,
        handle: RunnerHandle<S>,
    ) {
        let running = Running {
            kind,
            context,
            handle: Arc::new(handle),
        };
        self.lock_runners().insert(name, running);
    }

    pub(super) fn lock_inboxes(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<String, (&'static str, InboxHandle)>> {
        self.inboxes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Status of every inbox: (the context it reads, status).
    pub fn inbox_statuses(&self) -> Vec<(&'static str, InboxStatus)> {
        self.lock_inboxes()
            .values()
            .map(|(context, handle)| (*context, handle.status()))
            .collect()
    }

    pub(super) fn lock_runners(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running<S>>> {
        self.runners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn runner(&self, name: &str) -> Option<Arc<RunnerHandle<S>>> {
        self.lock_runners().get(name).map(|r| r.handle.clone())
    }

    /// Starts the failed runner `name` again from its checkpoint
    /// ([`RunnerHandle::restart`]).
    pub fn restart(&self, name: &str) -> Result<(), RestartRunner> {
        let handle = self
            .runner(name)
            .ok_or_else(|| RestartRunner::Unknown(name.chars().take(100).collect()))?;
        handle.restart().map_err(RestartRunner::NotFailed)
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

    /// Whether every store this process uses answers (split into services, its own
    /// context's; ordering's also its catalogue copy).
    pub async fn stores_reachable(&self) -> Result<(), tessera_core::StoreError> {
        let st = &self.stores;
        if self.runs("ordering") {
            st.ordering.head().await?;
        }
        if self.runs("inventory") || self.settings.service == Some(Service::Ordering) {
            st.inventory.head().await?;
        }
        if self.runs("payment") {
            st.payment.head().await?;
        }
        Ok(())
    }
}
