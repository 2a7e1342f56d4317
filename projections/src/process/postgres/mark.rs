//! The low-water mark of the outbox scan: a `seq` at or below which no command is
//! pending, nor ever will be, so the worker's `due` scan starts after it rather than at
//! the outbox's first row.
//!
//! Without it every scan walks the pending index from its start, stepping over the
//! entries of every command dispatched since the last vacuum (their row versions are
//! dead, their index entries stay): in a 30-s flash sale on this machine, 4.2–5.5 s of
//! the server's time.
//!
//! Why the mark cannot simply follow the first pending command a scan sees: `seq` is
//! drawn when a command is queued, not when its transaction commits, so a scan may see
//! seq 9 committed while seq 7 is still to commit. The mark moves in two steps:
//!
//! 1. Each scan's one statement also reads its snapshot's `xmax` and the highest `seq`
//!    it sees (`top`). A *candidate* mark is the lower of `top` and the seq before the
//!    first pending command it sees. Every command at or below it that the scan could
//!    not see belongs to a transaction already running then, whose xid is therefore
//!    below that `xmax`: queuing a command assigns the transaction its xid before
//!    drawing the seq (the queuing statements call `pg_current_xact_id()` in their
//!    `WHERE`, evaluated before the row's defaults). A transaction that gets its xid
//!    after the snapshot draws a seq after it, above `top`.
//! 2. A later scan whose snapshot's `xmin` has reached that `xmax` sees every one of
//!    those transactions ended: their commands are visible to it, and it sees the first
//!    still pending. The mark moves to the lower of the candidate and the seq before
//!    that first pending command.
//!
//! A command never returns to pending once settled, and new commands draw higher seqs,
//! so a mark once true stays true: it only moves up.

use std::sync::Mutex;

use tokio_postgres::Row;

/// The mark of one process's outbox, shared by the clones of its store.
#[derive(Debug, Default)]
pub(super) struct LowWater(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    /// No command at or below this seq is pending, nor will be.
    after: i64,
    /// A mark that holds once every transaction running at its scan has ended: once a
    /// snapshot's xmin reaches `xmax`.
    candidate: Option<(i64, i64)>,
}

/// The horizon a `due` statement read with its page: its snapshot's xmin and xmax, the
/// highest seq it saw (0 for none), and the first pending seq after the mark it started
/// from (`None`: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Horizon {
    pub(super) xmin: i64,
    pub(super) xmax: i64,
    pub(super) top: i64,
    pub(super) first: Option<i64>,
}

impl Horizon {
    /// The horizon carried by a `due` page's rows (each row carries it; a page with no
    /// command is one row of nulls that carries it).
    pub(super) fn of(rows: &[Row]) -> Result<Option<Self>, tokio_postgres::Error> {
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let xmin: Option<i64> = row.try_get("h_xmin")?;
        let xmax: Option<i64> = row.try_get("h_xmax")?;
        let top: Option<i64> = row.try_get("h_top")?;
        let first: Option<i64> = row.try_get("h_first")?;
        Ok(xmin.zip(xmax).map(|(xmin, xmax)| Self {
            xmin,
            xmax,
            top: top.unwrap_or(0),
            first,
        }))
    }
}

impl LowWater {
    /// Where the next scan starts: after this seq.
    pub(super) fn after(&self) -> i64 {
        self.lock().after
    }

    /// What a scan that started after a mark read from [`Self::after`] saw.
    pub(super) fn saw(&self, horizon: Horizon) {
        // Everything up to here the scan saw settled (or nothing).
        let settled = horizon.first.map_or(i64::MAX, |seq| seq - 1);
        let mut state = self.lock();
        if let Some((candidate, xmax)) = state.candidate {
            if horizon.xmin >= xmax {
                state.after = state.after.max(candidate.min(settled));
                state.candidate = None;
            }
        }
        if state.candidate.is_none() {
            state.candidate = Some((settled.min(horizon.top), horizon.xmax));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two numbers, each write whole: a panic elsewhere leaves it sound.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(first: Option<i64>, xmin: i64, xmax: i64, top: i64) -> Horizon {
        Horizon {
            xmin,
            xmax,
            top,
            first,
        }
    }

    #[test]
    fn the_mark_moves_only_once_the_transactions_running_at_its_scan_have_ended() {
        let mark = LowWater::default();
        // Seq 1..=10 seen, 8 the first pending; transactions up to xid 99 may run.
        mark.saw(h(Some(8), 90, 100, 10));
        assert_eq!(mark.after(), 0, "not before the running transactions end");
        // Still running.
        mark.saw(h(Some(8), 99, 105, 12));
        assert_eq!(mark.after(), 0);
        // Ended; a command below the candidate turned up pending meanwhile (seq 5).
        mark.saw(h(Some(5), 100, 110, 14));
        assert_eq!(mark.after(), 4);
        // The next candidate, from that scan: min(4, 14) with xmax 110.
        mark.saw(h(None, 110, 120, 20));
        assert_eq!(mark.after(), 4);
        // Nothing pending under the candidate from the scan at xmax 120: top 20.
        mark.saw(h(None, 120, 130, 25));
        assert_eq!(mark.after(), 20);
    }

    #[test]
    fn the_mark_never_moves_back() {
        let mark = LowWater::default();
        mark.saw(h(None, 1, 10, 50));
        mark.saw(h(None, 10, 20, 60));
        assert_eq!(mark.after(), 50);
        mark.saw(h(None, 20, 30, 40));
        assert_eq!(mark.after(), 60);
        // The top rows pruned away meanwhile: the candidate of top 40 does not lower it.
        mark.saw(h(None, 30, 40, 40));
        assert_eq!(mark.after(), 60);
    }

    #[test]
    fn the_mark_stays_below_the_first_pending_command() {
        let mark = LowWater::default();
        mark.saw(h(Some(3), 1, 10, 50));
        mark.saw(h(Some(3), 10, 20, 60));
        assert_eq!(mark.after(), 2);
    }
}
