//! Rebuilding read models while the shop runs.

use std::sync::Arc;

use tessera_core::{BoxError, EventReader, EventStore, SnapshotStore};
use tessera_projections::Progress;

use super::{App, Contexts, Views};
use crate::inventory::{ProductsView, ReservationsView};
use crate::ordering::OrdersView;
use crate::payment::PaymentsView;
use tessera_projections::View;

/// Where a rebuild started through the API stands.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct RebuildState {
    /// Events applied so far.
    pub done: u64,
    /// Events it expects to apply in all: an estimate while it runs, counted from the
    /// log when the store can count (see `tessera_projections::Progress`).
    pub total: u64,
    /// Events per second.
    pub events_per_s: f64,
    /// Seconds left (estimate).
    pub eta_s: Option<f64>,
    /// Whether it took over.
    pub finished: bool,
    /// Why it failed.
    pub error: Option<String>,
}

/// Why a rebuild could not start.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// No read model has this name.
    #[error("no projection named {0:?}")]
    Unknown(String),
    /// A rebuild of it is running.
    #[error("a rebuild of {0} is already running")]
    Running(String),
}

/// The names of the read models that can be rebuilt.
pub const REBUILDABLE: [&str; 4] = [
    OrdersView::NAME,
    ProductsView::NAME,
    ReservationsView::NAME,
    PaymentsView::NAME,
];

/// Rebuilds the read model `name` (without prefix) of `views` from `stores`.
pub async fn rebuild_named<S: EventReader>(
    views: &Views,
    stores: &Contexts<S>,
    name: &str,
    progress: impl FnMut(&Progress) + Send,
) -> Result<u64, BoxError> {
    let (v, s) = (views, stores);
    match name {
        OrdersView::NAME => v.orders.rebuild(&s.ordering, progress).await,
        ProductsView::NAME => v.products.rebuild(&s.inventory, progress).await,
        ReservationsView::NAME => v.reservations.rebuild(&s.inventory, progress).await,
        PaymentsView::NAME => v.payments.rebuild(&s.payment, progress).await,
        other => Err(RebuildError::Unknown(other.to_owned()).into()),
    }
}

impl<S: EventStore + SnapshotStore> App<S> {
    /// Rebuilds the read model `name` (without prefix), reporting progress. Split into
    /// services, only the service's own read models are known.
    pub async fn rebuild(
        &self,
        name: &str,
        progress: impl FnMut(&Progress) + Send,
    ) -> Result<u64, BoxError> {
        if !self.owns_view(name) {
            return Err(RebuildError::Unknown(name.chars().take(100).collect()).into());
        }
        rebuild_named(&self.views, &self.stores, name, progress).await
    }

    /// Whether `name` is one of the read models this process keeps (each is named
    /// after its context: `ordering_orders`, ...).
    fn owns_view(&self, name: &str) -> bool {
        let context = name.split('_').next().unwrap_or_default();
        REBUILDABLE.contains(&name) && self.runs(context)
    }

    /// Starts a rebuild of `name` in the background.
    pub fn start_rebuild(self: &Arc<Self>, name: &str) -> Result<(), RebuildError> {
        let known = REBUILDABLE
            .iter()
            .find(|n| **n == name && self.owns_view(n));
        let Some(name) = known.copied() else {
            return Err(RebuildError::Unknown(name.chars().take(100).collect()));
        };
        {
            let mut states = self.lock_rebuilds();
            if states
                .get(name)
                .is_some_and(|s| !s.finished && s.error.is_none())
            {
                return Err(RebuildError::Running(name.to_owned()));
            }
            states.insert(name.to_owned(), RebuildState::default());
        }
        let app = Arc::clone(self);
        tokio::spawn(async move {
            let result = app
                .rebuild(name, |p| {
                    app.lock_rebuilds().insert(
                        name.to_owned(),
                        RebuildState {
                            done: p.done,
                            total: p.total_estimate,
                            events_per_s: p.events_per_s,
                            eta_s: p.eta.map(|d| d.as_secs_f64()),
                            finished: p.finished,
                            error: None,
                        },
                    );
                })
                .await;
            let mut states = app.lock_rebuilds();
            let state = states.entry(name.to_owned()).or_default();
            match result {
                Ok(_) => state.finished = true,
                Err(e) => {
                    tracing::error!(projection = name, error = %e, "rebuild failed");
                    state.error = Some(e.to_string());
                }
            }
        });
        Ok(())
    }

    fn lock_rebuilds(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, RebuildState>> {
        self.rebuilds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last known state of each rebuild started through the API.
    pub fn rebuild_states(&self) -> std::collections::BTreeMap<String, RebuildState> {
        self.lock_rebuilds().clone()
    }
}
