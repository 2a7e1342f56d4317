//! The operator console at `/admin` ([`tessera_console`]): the stores of the contexts
//! this process runs, the saga's instances, every runner and inbox with rebuild and
//! restart, and the payment gateway's guard. Its API passes the admin routes' check.

use std::sync::Arc;

use axum::Router;
use tessera_console::{ActionError, Console, Denied, Operations, RebuildInfo, RunnerInfo};
use tessera_core::{EventStore, SnapshotStore};

use super::admin;
use crate::app::{App, RebuildError, RestartRunner, SagaStore, REBUILDABLE};
use crate::fulfilment::Fulfilment;

/// The console's router over `app` (nested at `/admin` by [`super::router`]).
pub fn router<S: EventStore + SnapshotStore>(app: &Arc<App<S>>) -> Router {
    let mut console = Console::new("Tessera shop");
    for (context, store) in [
        ("ordering", &app.stores.ordering),
        ("inventory", &app.stores.inventory),
        ("payment", &app.stores.payment),
    ] {
        if app.runs(context) {
            console = console.store(context, store.clone());
        }
    }
    if app.runs("ordering") {
        console = match &app.saga {
            SagaStore::Memory(m) => console.process::<Fulfilment, _>(m.clone()),
            SagaStore::Pg(p) => console.process::<Fulfilment, _>(p.clone()),
        };
    }
    if app.runs("payment") {
        console = console.guard("payment_gateway", app.route.clone());
    }
    let settings = app.settings.clone();
    console
        .operations(ShopOperations(Arc::clone(app)))
        .authorize(move |method, headers| {
            admin::admit(&settings, method, headers).map_err(|p| Denied::new(p.status, p.detail))
        })
        .router()
}

struct ShopOperations<S>(Arc<App<S>>);

impl<S> ShopOperations<S> {
    /// A read model's runner is named with the schema prefix; rebuilds without it.
    fn unprefixed<'a>(&self, name: &'a str) -> &'a str {
        name.strip_prefix(self.0.settings.prefix.as_str())
            .unwrap_or(name)
    }
}

impl<S: EventStore + SnapshotStore> Operations for ShopOperations<S> {
    fn runners(&self) -> Vec<RunnerInfo> {
        let app = &self.0;
        let mut rows: Vec<RunnerInfo> = app
            .statuses()
            .iter()
            .map(|(kind, context, status)| {
                let row = RunnerInfo::from_status(kind.as_str(), context, status);
                if REBUILDABLE.contains(&self.unprefixed(&status.name)) {
                    row.rebuildable()
                } else {
                    row
                }
            })
            .collect();
        rows.extend(app.inbox_statuses().into_iter().map(|(context, s)| {
            let poison = s.poison.as_ref().map(|p| {
                format!(
                    "{} ({} {}@{}): {}",
                    p.id.map(|i| i.to_string()).unwrap_or_default(),
                    p.name,
                    p.stream,
                    p.version,
                    p.error
                )
            });
            RunnerInfo {
                name: s.name.clone(),
                kind: "inbox".to_owned(),
                context: context.to_owned(),
                state: s.state.as_str().to_owned(),
                checkpoint: format!("{} handled, {} duplicates", s.handled, s.duplicates),
                lag_events: s.lag.unwrap_or(0),
                lag_ms: 0,
                held_back_events: s.held_back,
                applied: s.handled,
                last_error: poison.or(s.last_error.clone()),
                failed_event: None,
                backlog: None,
                rebuildable: false,
                // An inbox stopped on a poison message restarts with the service (or
                // its message is dead-lettered); the console has no restart for it.
                restartable: false,
            }
        }));
        rows
    }

    fn rebuilds(&self) -> Vec<RebuildInfo> {
        self.0
            .rebuild_states()
            .into_iter()
            .map(|(name, s)| RebuildInfo {
                // As the runner's row is named.
                name: format!("{}{name}", self.0.settings.prefix),
                done: s.done,
                total: s.total.max(s.done),
                finished: s.finished,
                error: s.error,
            })
            .collect()
    }

    fn rebuild(&self, name: &str) -> Result<(), ActionError> {
        self.0
            .start_rebuild(self.unprefixed(name))
            .map_err(|e| match e {
                RebuildError::Unknown(_) => ActionError::Unknown(e.to_string()),
                RebuildError::Running(_) => ActionError::Conflict(e.to_string()),
            })
    }

    fn restart(&self, name: &str) -> Result<(), ActionError> {
        self.0.restart(name).map_err(|e| match e {
            RestartRunner::Unknown(_) => ActionError::Unknown(e.to_string()),
            RestartRunner::NotFailed(_) => ActionError::Conflict(e.to_string()),
        })
    }
}
