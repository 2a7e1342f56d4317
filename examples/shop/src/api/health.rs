//! Health and metrics.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use tessera_core::{EventStore, SnapshotStore};
use tessera_projections::State as RunnerState;

use super::inboxes::{is_down, render_metrics};
use super::Correlation;
use crate::app::App;
use crate::metrics::escape;
use tessera_projections::integration::InboxState;

/// Readiness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`, `degraded` (payment breaker open, or the bus unreachable: commands are
    /// taken and their events wait in the log), `not_ready`, or `draining` (the server
    /// is shutting down).
    pub status: &'static str,
    /// `ok`, or `unavailable` when a store does not answer (the error goes to the log,
    /// under `instance`).
    pub store: &'static str,
    /// Runners and inboxes that failed or stopped.
    pub failed_runners: Vec<String>,
    /// `ok`, or `unavailable` while an inbox cannot reach the broker (it backs off and
    /// reconnects; nothing is lost).
    pub bus: &'static str,
    /// `closed`, `open` or `half_open`.
    pub payment_breaker: &'static str,
    /// When not ready: `urn:uuid:` and the request's correlation id, under which the
    /// log has the reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", responses((status = 200)))]
pub async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "live" }))
}

/// Stores reachable, no runner or inbox failed, not shutting down; reports the bus and
/// the payment breaker.
#[utoipa::path(get, path = "/health/ready", responses((status = 200, body = Ready), (status = 503, body = Ready)))]
pub async fn ready<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
    Correlation(correlation): Correlation,
) -> (StatusCode, Json<Ready>) {
    let store = match app.stores_reachable().await {
        Ok(()) => "ok",
        Err(e) => {
            // The correlation id as a field of the line itself, as the API's "request
            // failed" lines carry it: the reason is found under `instance` whether or
            // not the request's span is recorded.
            tracing::error!(error = %e, correlation_id = %correlation, "not ready: a store does not answer");
            "unavailable"
        }
    };
    let inboxes = app.inbox_statuses();
    let failed_runners: Vec<String> = app
        .statuses()
        .into_iter()
        .filter(|(_, _, s)| matches!(s.state, RunnerState::Failed | RunnerState::Stopped))
        .map(|(_, _, s)| s.name)
        .chain(
            inboxes
                .iter()
                .filter(|(_, s)| is_down(s.state))
                .map(|(_, s)| s.name.clone()),
        )
        .collect();
    let bus = if inboxes
        .iter()
        .any(|(_, s)| s.state == InboxState::Reconnecting)
    {
        "unavailable"
    } else {
        "ok"
    };
    let breaker = app.route.breaker().state().as_str();
    let ok = store == "ok" && failed_runners.is_empty();
    let draining = app.is_draining();
    let status = match (ok, breaker, bus) {
        (true, _, _) if draining => "draining",
        (false, _, _) => "not_ready",
        (true, "open", _) | (true, _, "unavailable") => "degraded",
        (true, _, _) => "ready",
    };
    let code = if ok && !draining {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(Ready {
            status,
            store,
            failed_runners,
            bus,
            payment_breaker: breaker,
            instance: (!ok).then(|| format!("urn:uuid:{correlation}")),
        }),
    )
}

/// Prometheus text: HTTP counters, orders placed, runner checkpoints and lag, inbox
/// lag and counts, then what the libraries and the shop record through the `metrics`
/// facade ([`crate::metrics::render_recorded`]).
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain")))]
pub async fn metrics<S: EventStore + SnapshotStore>(
    State(app): State<Arc<App<S>>>,
) -> impl IntoResponse {
    let mut out = String::new();
    app.metrics.render(&mut out);
    let statuses = app.statuses();
    out.push_str("# HELP tessera_runner_lag_events Events between a runner's checkpoint and the head of its log.\n");
    out.push_str("# TYPE tessera_runner_lag_events gauge\n");
    for (_, _, s) in &statuses {
        let _ = writeln!(
            out,
            "tessera_runner_lag_events{{runner=\"{}\"}} {}",
            escape(&s.name),
            s.lag_events
        );
    }
    out.push_str("# HELP tessera_runner_held_back_events Committed events a runner's store does not show readers yet (held back by an open transaction).\n");
    out.push_str("# TYPE tessera_runner_held_back_events gauge\n");
    for (_, _, s) in &statuses {
        let _ = writeln!(
            out,
            "tessera_runner_held_back_events{{runner=\"{}\"}} {}",
            escape(&s.name),
            s.held_back.events_behind
        );
    }
    out.push_str("# HELP tessera_runner_applied_total Events applied by a runner since start.\n");
    out.push_str("# TYPE tessera_runner_applied_total counter\n");
    for (_, _, s) in &statuses {
        let _ = writeln!(
            out,
            "tessera_runner_applied_total{{runner=\"{}\"}} {}",
            escape(&s.name),
            s.applied
        );
    }
    out.push_str("# HELP tessera_runner_up 1 unless the runner stopped or failed.\n# TYPE tessera_runner_up gauge\n");
    for (_, _, s) in &statuses {
        let up = u8::from(!matches!(
            s.state,
            RunnerState::Failed | RunnerState::Stopped
        ));
        let _ = writeln!(
            out,
            "tessera_runner_up{{runner=\"{}\"}} {up}",
            escape(&s.name)
        );
    }
    render_metrics(&mut out, &app.inbox_statuses());
    let a = &app.admission;
    let _ = writeln!(
        out,
        "# HELP shop_admission_backlog The pipeline's backlog as admission control last measured it (runners' lag and inboxes' waiting messages).\n\
         # TYPE shop_admission_backlog gauge\n\
         shop_admission_backlog {}\n\
         # HELP shop_admission_max_backlog The backlog over which new orders are refused (0: never).\n\
         # TYPE shop_admission_max_backlog gauge\n\
         shop_admission_max_backlog {}\n\
         # HELP shop_admission_refusing 1 while new orders are refused for the backlog.\n\
         # TYPE shop_admission_refusing gauge\n\
         shop_admission_refusing {}\n\
         # HELP shop_orders_refused_total Orders refused for the backlog since start.\n\
         # TYPE shop_orders_refused_total counter\n\
         shop_orders_refused_total {}",
        a.backlog(),
        a.max(),
        u8::from(a.refusing()),
        a.refused()
    );
    if let Ok(b) = app.saga.backlog().await {
        let age = b.oldest_age(std::time::SystemTime::now()).as_secs_f64();
        let _ = writeln!(
            out,
            "# HELP tessera_process_backlog_commands Commands a process manager issued and has not dispatched yet.\n\
             # TYPE tessera_process_backlog_commands gauge\n\
             tessera_process_backlog_commands{{process=\"fulfilment\"}} {}\n\
             # HELP tessera_process_backlog_retrying Waiting commands that failed at least once.\n\
             # TYPE tessera_process_backlog_retrying gauge\n\
             tessera_process_backlog_retrying{{process=\"fulfilment\"}} {}\n\
             # HELP tessera_process_backlog_oldest_seconds How long the oldest waiting command has waited.\n\
             # TYPE tessera_process_backlog_oldest_seconds gauge\n\
             tessera_process_backlog_oldest_seconds{{process=\"fulfilment\"}} {age:.3}",
            b.waiting, b.retrying
        );
        out.push_str("# HELP tessera_process_instances Instances of a process manager by status.\n# TYPE tessera_process_instances gauge\n");
        for (status, n) in b.instances.by_status() {
            let _ = writeln!(
                out,
                "tessera_process_instances{{process=\"fulfilment\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tessera_process_deadlines_scheduled Deadlines scheduled, not fired or cancelled yet.\n\
             # TYPE tessera_process_deadlines_scheduled gauge\n\
             tessera_process_deadlines_scheduled{{process=\"fulfilment\"}} {}\n\
             # HELP tessera_process_deadlines_due Scheduled deadlines whose time has come.\n\
             # TYPE tessera_process_deadlines_due gauge\n\
             tessera_process_deadlines_due{{process=\"fulfilment\"}} {}",
            b.deadlines_scheduled, b.deadlines_due
        );
    }
    let open = u8::from(
        app.route.breaker().state() == tessera_projections::resilience::BreakerState::Open,
    );
    let _ = writeln!(out, "# HELP shop_payment_breaker_open 1 while the payment breaker is open.\n# TYPE shop_payment_breaker_open gauge\nshop_payment_breaker_open {open}");
    crate::metrics::render_recorded(&mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
