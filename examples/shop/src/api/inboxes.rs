//! The inboxes in the admin status, readiness and metrics.

use std::fmt::Write;

use serde::Serialize;
use tessera_projections::integration::{InboxState, InboxStatus};

use crate::metrics::escape;

/// One inbox's status: a durable consumer of another context's integration events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InboxStatusBody {
    /// Its durable consumer's name.
    pub name: String,
    /// The context whose events it reads.
    pub context: &'static str,
    /// `starting`, `running`, `reconnecting` (the broker is unreachable), `stopped` or
    /// `failed` (stopped on a poison message).
    pub state: &'static str,
    /// Messages the broker holds for it, not acknowledged yet (`null` if the broker
    /// cannot tell).
    pub lag_messages: Option<u64>,
    /// Messages handled since start.
    pub handled: u64,
    /// Repeats acknowledged without effect.
    pub duplicates: u64,
    /// Deliveries held back until their predecessor in the source stream was handled.
    pub held_back: u64,
    /// Messages parked in the dead-letter destination.
    pub dead_lettered: u64,
    /// Deliveries that were not integration messages.
    pub rejected: u64,
    /// Last error, retried or final.
    pub last_error: Option<String>,
    /// The message it stopped on (or parked last): source stream, version, name, error.
    pub poison: Option<String>,
}

impl InboxStatusBody {
    /// The body of `status`, an inbox reading `context`.
    pub fn new(context: &'static str, status: InboxStatus) -> Self {
        Self {
            name: status.name,
            context,
            state: status.state.as_str(),
            lag_messages: status.lag,
            handled: status.handled,
            duplicates: status.duplicates,
            held_back: status.held_back,
            dead_lettered: status.dead_lettered,
            rejected: status.rejected,
            last_error: status.last_error,
            poison: status.poison.map(|p| {
                let what = if p.name.is_empty() {
                    "unreadable message"
                } else {
                    &p.name
                };
                format!("{}@{} ({what}): {}", p.stream, p.version, p.error)
            }),
        }
    }
}

/// Whether an inbox in `state` is out of service for good (readiness fails).
pub fn is_down(state: InboxState) -> bool {
    matches!(state, InboxState::Failed | InboxState::Stopped)
}

/// Appends the inboxes' gauges and counters in Prometheus text.
pub fn render_metrics(out: &mut String, inboxes: &[(&'static str, InboxStatus)]) {
    type Figure = fn(&InboxStatus) -> Option<u64>;
    let figures: [(&str, &str, &str, Figure); 6] = [
        (
            "tessera_inbox_lag_messages",
            "gauge",
            "Messages the broker holds for an inbox, not acknowledged yet.",
            |s| s.lag,
        ),
        (
            "tessera_inbox_handled_total",
            "counter",
            "Messages an inbox handled since start.",
            |s| Some(s.handled),
        ),
        (
            "tessera_inbox_duplicates_total",
            "counter",
            "Repeats an inbox acknowledged without effect.",
            |s| Some(s.duplicates),
        ),
        (
            "tessera_inbox_dead_lettered_total",
            "counter",
            "Messages an inbox parked in the dead-letter destination.",
            |s| Some(s.dead_lettered),
        ),
        (
            "tessera_inbox_rejected_total",
            "counter",
            "Deliveries to an inbox that were not integration messages.",
            |s| Some(s.rejected),
        ),
        (
            "tessera_inbox_up",
            "gauge",
            "1 unless the inbox stopped or failed.",
            |s| Some(u64::from(!is_down(s.state))),
        ),
    ];
    for (name, kind, help, figure) in figures {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (_, s) in inboxes {
            if let Some(v) = figure(s) {
                let _ = writeln!(out, "{name}{{inbox=\"{}\"}} {v}", escape(&s.name));
            }
        }
    }
}
