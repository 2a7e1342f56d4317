//! Admin routes: runner status, rebuilds. Guarded by a bearer token.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tessera_core::{EventStore, SnapshotStore};

use super::extract::PathParam;
use super::inboxes::InboxStatusBody;
use super::Problem;
use crate::app::{App, Kind, RebuildError, RebuildState};
use crate::settings::Settings;
use tessera_projections::process::Backlog;

/// One runner's status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunnerStatus {
    /// Its name.
    pub name: String,
    /// `projection`, `saga`, `relay` (publishing its context's public events to the
    /// bus) or `worker`.
    pub kind: &'static str,
    /// The context whose log it reads.
    pub context: &'static str,
    /// `starting`, `catching_up`, `live`, `rebuilding`, `stopped` or `failed`.
    pub state: &'static str,
    /// Last position applied.
    pub checkpoint: String,
    /// Head of its log when last looked at.
    pub head: Option<String>,
    /// Events behind.
    pub lag_events: u64,
    /// Age of the oldest unapplied event, in milliseconds.
    pub lag_ms: u128,
    /// Committed events its store does not show readers yet (on PostgreSQL, held back
    /// by a transaction still open somewhere on the server; 0 in memory).
    pub held_back_events: u64,
    /// How long the transaction holding them back has been open, in milliseconds.
    pub held_back_ms: Option<u128>,
    /// Events applied since start.
    pub applied: u64,
    /// Last error, retried or final.
    pub last_error: Option<String>,
    /// The commands waiting to be dispatched, from the runner's status or read for the
    /// saga (a process manager only; left out when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backlog: Option<BacklogBody>,
}

/// What waits in a process manager's outbox.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacklogBody {
    /// Commands issued and not dispatched yet.
    pub waiting: u64,
    /// Of those, the ones that failed at least once and wait for a retry.
    pub retrying: u64,
    /// How long the oldest has waited, in milliseconds (0 when none waits).
    pub oldest_ms: u128,
}

impl From<Backlog> for BacklogBody {
    fn from(b: Backlog) -> Self {
        Self {
            waiting: b.waiting,
            retrying: b.retrying,
            oldest_ms: b.oldest_age(std::time::SystemTime::now()).as_millis(),
        }
    }
}

/// Status of every runner and rebuild.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AdminStatus {
    /// `memory` or `postgres`.
    pub backend: &'static str,
    /// Every projection, saga leg, relay and worker.
    pub runners: Vec<RunnerStatus>,
    /// Every inbox (the ordering context's consumers of the inventory and payment
    /// events).
    pub inboxes: Vec<InboxStatusBody>,
    /// The bus between the contexts, without credentials.
    pub bus: String,
    /// Rebuilds started through the API, by projection.
    pub rebuilds: BTreeMap<String, RebuildState>,
}

/// Lets a request through when `admit` does.
pub async fn guard<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    req: Request,
    next: Next,
) -> Response {
    match admit(&app.settings, req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(problem) => problem.into_response(),
    }
}

/// Whether a request may reach an admin route. A state-changing one (any method but
/// GET, HEAD, OPTIONS, TRACE) carrying an `Origin` other than the server's own is
/// refused (403): a web page cannot make a browser run a rebuild. Then the bearer token
/// must match when one is set (401 otherwise); without one, the routes are open only
/// when the server was started with `--admin-open` (403 otherwise). Where the request
/// comes from (loopback or not) plays no part: behind a proxy every request does.
pub(super) fn admit(
    settings: &Settings,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    if !method.is_safe() {
        let foreign = headers.get_all(header::ORIGIN).iter().any(|origin| {
            !origin.to_str().is_ok_and(|o| {
                settings
                    .origins
                    .iter()
                    .any(|own| own.eq_ignore_ascii_case(o))
            })
        });
        if foreign {
            return Err(Problem::forbidden(
                "admin routes refuse state-changing requests from another origin",
            ));
        }
    }
    match &settings.admin_token {
        Some(token) if token.matches_bearer(headers) => Ok(()),
        Some(_) => Err(Problem::unauthorized(
            "admin routes need `Authorization: Bearer <SHOP_ADMIN_TOKEN>`",
        )),
        None if settings.admin_open => Ok(()),
        None => Err(Problem::forbidden(
            "admin routes are off: set SHOP_ADMIN_TOKEN, or start the server with --admin-open",
        )),
    }
}

/// Status of every projection, saga leg and worker, with the saga's backlog of
/// commands waiting to be dispatched, and every inbox.
///
/// Admin routes take the bearer token when one is set (`SHOP_ADMIN_TOKEN`); without one
/// they are refused (403) unless the server was started with `--admin-open`.
#[utoipa::path(get, path = "/v1/admin/projections", responses((status = 200, body = AdminStatus),
        (status = 401, response = super::ProblemBody), (status = 403, response = super::ProblemBody)),
    security(("bearer" = []), ()))]
pub async fn status<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
) -> Json<AdminStatus> {
    let mut runners: Vec<RunnerStatus> = app
        .statuses()
        .into_iter()
        .map(|(kind, context, s)| RunnerStatus {
            name: s.name,
            kind: kind.as_str(),
            context,
            state: s.state.as_str(),
            checkpoint: s.checkpoint.to_string(),
            head: s.head.map(|h| h.to_string()),
            lag_events: s.lag_events,
            lag_ms: s.lag.as_millis(),
            held_back_events: s.held_back.events_behind,
            held_back_ms: s.held_back.oldest_open_transaction.map(|d| d.as_millis()),
            applied: s.applied,
            last_error: s
                .failure
                .map(|f| {
                    let what = f.event_type.as_deref().unwrap_or("undecodable event");
                    format!(
                        "at {} ({what}, {}@{}): {}",
                        f.position, f.stream_id, f.version, f.error
                    )
                })
                .or(s.last_error),
            backlog: s.backlog.map(BacklogBody::from),
        })
        .collect();
    let saga = runners.iter_mut().find(|r| r.kind == Kind::Saga.as_str());
    if let Some(saga) = saga.filter(|s| s.backlog.is_none()) {
        match app.saga.backlog().await {
            Ok(b) => saga.backlog = Some(b.into()),
            Err(e) => tracing::warn!(error = %e, "cannot read the saga's backlog"),
        }
    }
    let inboxes = app
        .inbox_statuses()
        .into_iter()
        .map(|(context, s)| InboxStatusBody::new(context, s))
        .collect();
    Json(AdminStatus {
        backend: app.backend,
        runners,
        inboxes,
        bus: app.bus.describe(),
        rebuilds: app.rebuild_states(),
    })
}

/// Starts a zero-downtime rebuild of a projection (name without prefix, e.g.
/// `ordering_orders`); poll the status route for progress. Guarded like the status route,
/// and refused (403) when sent from a web page of another origin.
#[utoipa::path(post, path = "/v1/admin/projections/{name}/rebuild", params(("name" = String, Path, description = "The projection")),
    responses((status = 202), (status = 400, response = super::ProblemBody), (status = 401, response = super::ProblemBody),
        (status = 403, response = super::ProblemBody), (status = 404, response = super::ProblemBody),
        (status = 409, response = super::ProblemBody)),
    security(("bearer" = []), ()))]
pub async fn rebuild<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    PathParam(name): PathParam<String>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    match app.start_rebuild(&name) {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({ "name": name, "status": "started" })),
        )),
        Err(e @ RebuildError::Unknown(_)) => Err(Problem::not_found(e.to_string())),
        Err(e @ RebuildError::Running(_)) => Err(Problem::conflict(
            "rebuild-running",
            "A rebuild is running",
            e.to_string(),
        )),
    }
}
