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
//! 1. Each scan's one statement also reads the highest `seq` it sees (`top`) and the
//!    first pending one after the mark (`first`). A *candidate* mark is the lower of
//!    `top` and `first − 1`. A command at or below it that the scan could not see was
//!    queued before the scan (its seq is below a committed one, and the identity's
//!    sequence hands out values in time order: its cache is 1), by a transaction that
//!    had its xid by then: queuing assigns the transaction its xid before drawing the
//!    seq (the queuing statements call `pg_current_xact_id()` in their `WHERE`,
//!    evaluated before the row's defaults). After the scan the store takes a fresh xid
//!    `x` (a transaction of its own that does nothing else): every xid assigned before
//!    the scan is below `x`. (Not the snapshot's `xmax`: that is one past the latest
//!    *completed* xid, and a transaction still running can hold an xid above it.)
//! 2. A later scan whose snapshot's `xmin` has reached `x` sees every transaction with
//!    an xid below `x` ended (a running one below its `xmax` would be in its `xip`, and
//!    one at or above its `xmax` is at or above its `xmin`): their commands are visible
//!    to it. The mark moves to the lower of the candidate and the seq before the first
//!    pending command that scan sees.
//!
//! A candidate is proposed at most every [`PROPOSE_EVERY`], so the store spends at most a
//! few xids a second on it. A command never returns to pending once settled, and new
//! commands draw higher seqs, so a mark once true stays true: it only moves up.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_postgres::Row;

/// How often a candidate mark is proposed at most (each costs an xid).
pub(super) const PROPOSE_EVERY: Duration = Duration::from_millis(250);

/// The mark of one process's outbox, shared by the clones of its store.
#[derive(Debug, Default)]
pub(super) struct LowWater(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    /// No command at or below this seq is pending, nor will be.
    after: i64,
    /// A mark that holds once every transaction with an xid below `xid` has ended.
    candidate: Option<(i64, i64)>,
    /// When the last candidate was proposed.
    proposed: Option<Instant>,
}

/// The horizon a `due` statement read with its page: its snapshot's xmin, the highest
/// seq it saw (0 for none), and the first pending seq after the mark it started from
/// (`None`: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Horizon {
    pub(super) xmin: i64,
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
        let top: Option<i64> = row.try_get("h_top")?;
        let first: Option<i64> = row.try_get("h_first")?;
        Ok(xmin.map(|xmin| Self {
            xmin,
            top: top.unwrap_or(0),
            first,
        }))
    }

    /// The candidate mark this scan proposes.
    fn candidate(&self) -> i64 {
        self.first.map_or(i64::MAX, |seq| seq - 1).min(self.top)
    }
}

impl LowWater {
    /// Where the next scan starts: after this seq.
    pub(super) fn after(&self) -> i64 {
        self.lock().after
    }

    /// What a scan that started after a mark read from [`Self::after`] saw, at `now`.
    /// Returns the candidate to propose, if one is wanted: the caller then takes a fresh
    /// xid and hands both to [`Self::propose`].
    pub(super) fn saw(&self, horizon: Horizon, now: Instant) -> Option<i64> {
        let mut state = self.lock();
        if let Some((candidate, xid)) = state.candidate {
            if horizon.xmin >= xid {
                // Everything up to here the scan saw settled (or nothing).
                let settled = horizon.first.map_or(i64::MAX, |seq| seq - 1);
                state.after = state.after.max(candidate.min(settled));
                state.candidate = None;
            }
        }
        let due = state
            .proposed
            .is_none_or(|at| now.saturating_duration_since(at) >= PROPOSE_EVERY);
        (state.candidate.is_none() && due).then(|| {
            state.proposed = Some(now);
            horizon.candidate()
        })
    }

    /// A candidate from [`Self::saw`], with an xid taken after that scan.
    pub(super) fn propose(&self, candidate: i64, xid: i64) {
        self.lock().candidate = Some((candidate, xid));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few numbers, each write whole: a panic elsewhere leaves it sound.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(first: Option<i64>, xmin: i64, top: i64) -> Horizon {
        Horizon { xmin, top, first }
    }

    /// Each call a throttle's interval after the last.
    fn clock() -> impl FnMut() -> Instant {
        let start = Instant::now();
        let mut n = 0;
        move || {
            n += 1;
            start + PROPOSE_EVERY * n
        }
    }

    #[test]
    fn the_mark_moves_only_once_the_transactions_before_its_xid_have_ended() {
        let (mark, mut now) = (LowWater::default(), clock());
        // Seq 1..=10 seen, 8 the first pending: candidate 7, xid 100 taken after.
        assert_eq!(mark.saw(h(Some(8), 90, 10), now()), Some(7));
        mark.propose(7, 100);
        assert_eq!(mark.after(), 0, "not before the transactions end");
        // A transaction below xid 100 still runs: nothing moves, nothing new proposed.
        assert_eq!(mark.saw(h(Some(8), 99, 12), now()), None);
        assert_eq!(mark.after(), 0);
        // Ended; a command below the candidate turned up pending meanwhile (seq 5).
        assert_eq!(mark.saw(h(Some(5), 100, 14), now()), Some(4));
        assert_eq!(mark.after(), 4);
        mark.propose(4, 110);
        assert_eq!(mark.saw(h(None, 110, 20), now()), Some(20));
        assert_eq!(mark.after(), 4);
        mark.propose(20, 120);
        assert_eq!(mark.saw(h(None, 120, 25), now()), Some(25));
        assert_eq!(mark.after(), 20);
    }

    #[test]
    fn the_mark_never_moves_back() {
        let (mark, mut now) = (LowWater::default(), clock());
        mark.saw(h(None, 1, 50), now());
        mark.propose(50, 10);
        // The top rows pruned away meanwhile: a lower candidate does not lower it.
        assert_eq!(mark.saw(h(None, 10, 40), now()), Some(40));
        assert_eq!(mark.after(), 50);
        mark.propose(40, 20);
        mark.saw(h(None, 20, 40), now());
        assert_eq!(mark.after(), 50);
    }

    #[test]
    fn candidates_are_proposed_at_most_every_interval() {
        let mark = LowWater::default();
        let start = Instant::now();
        assert_eq!(mark.saw(h(None, 1, 5), start), Some(5));
        mark.propose(5, 10);
        // Promoted, but too soon for the next proposal.
        assert_eq!(mark.saw(h(None, 10, 6), start), None);
        assert_eq!(mark.after(), 5);
        assert_eq!(mark.saw(h(None, 10, 6), start + PROPOSE_EVERY), Some(6));
    }

    #[test]
    fn the_mark_stays_below_the_first_pending_command() {
        let (mark, mut now) = (LowWater::default(), clock());
        mark.saw(h(Some(3), 1, 50), now());
        mark.propose(2, 10);
        mark.saw(h(Some(3), 10, 60), now());
        assert_eq!(mark.after(), 2);
    }
}
