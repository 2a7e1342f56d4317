//! Group commit without a writer task: a caller whose append finds an append
//! connection free leads a group on it, in its own task: the appends at the front of
//! the queue (normally including its own), one per stream, and it answers the others.
//!
//! A dedicated writer task costs every append two task hand-offs (caller to writer and
//! back), often across worker threads; here a leader's own append usually has none and
//! the others one each. The rules that keep this correct:
//!
//! - All bookkeeping (the queue, the idle connections, how many callers are still
//!   there) is under one lock ([`State`]), so a job queued while every connection is
//!   busy is always seen by the leader that frees one: [`Lease::release`] runs under the
//!   same lock as the queueing in [`Committer::append`].
//! - A leader runs one group, frees its connection and, if jobs are left, wakes one
//!   waiting caller to lead the next (that caller may find its own append already done
//!   and lead anyway). When no caller is left to wake, a task is spawned to run what is
//!   queued, by the leader freeing the connection or by the last caller to go
//!   ([`Waiting`]), so a queued append never waits for a later one.
//! - A leader's group is never abandoned halfway: if its caller is dropped (an HTTP
//!   client went away), the rest of the group runs on a spawned task ([`Detached`]).
//!   If a group panics, its connection is dropped (its state is unknown) and the slot
//!   goes back to the idle ones ([`Lease`]'s drop), so the store keeps appending.
//! - Two groups never hold the same stream: the streams of the groups being sent are
//!   kept under the lock, and a queued append to one of them waits, in its place, for
//!   that group to end. (Two connections writing one stream would otherwise queue on
//!   its row lock, and two groups locking rows in opposite orders deadlock.) A leader
//!   finding only such appends queued frees its connection without waking anyone: the
//!   group holding their stream wakes the next leader when it ends.
//! - The queue is bounded: past [`Committer::capacity`] waiting appends, an append is
//!   refused at once as unavailable instead of queueing behind a database that is not
//!   keeping up.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tessera_core::{AppendOutcome, Landing, StoreError, StreamId};
use tokio::sync::{oneshot, Notify};

use super::lease::{Detached, Lease, Slot, Waiting};
use super::queue::{Job, State};
use super::write::Writer;

/// How many times a leader lets other tasks run, while its group is smaller than the
/// last one on its connection, before it sends the group. Callers whose appends just
/// committed are then able to queue their next one into this group instead of the one
/// after. A connection whose last group held one append (no concurrency) does not wait.
const GATHER_YIELDS: usize = 16;

/// The append queue and the connections that commit it.
pub(crate) struct Committer {
    writer: Writer,
    /// Most appends queued at once.
    capacity: usize,
    state: Mutex<State>,
    /// Wakes one waiting caller to lead the next group.
    handoff: Notify,
}

/// What a freed connection leaves to do.
pub(super) enum Next {
    /// Nothing is queued.
    Idle,
    /// Jobs are queued and a caller was woken to lead them.
    Woken,
    /// Jobs are queued and nobody waits for them: someone must run them.
    Orphaned,
    /// Jobs are queued, all of streams another group is sending: that group's end
    /// wakes their leader.
    Blocked,
}

impl Committer {
    pub(crate) fn new(writer: Writer, connections: usize, capacity: usize) -> Self {
        let idle = (0..connections.max(1))
            .map(|_| Slot {
                connection: None,
                last: 1,
            })
            .collect();
        Self {
            writer,
            capacity: capacity.max(1),
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle,
                waiting: 0,
                running: Vec::new(),
            }),
            handoff: Notify::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover the data if something did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` and waits for its outcome, leading groups whenever it is this
    /// caller's turn.
    pub(crate) async fn append(
        self: &Arc<Self>,
        job: Job,
        mut outcome: oneshot::Receiver<Result<(AppendOutcome, Landing), StoreError>>,
    ) -> Result<(AppendOutcome, Landing), StoreError> {
        let mut slot = {
            let mut state = self.lock();
            if state.queue.len() >= self.capacity {
                return Err(StoreError::Unavailable {
                    message: format!(
                        "{} appends are already waiting for PostgreSQL at {}: it is not keeping up; nothing was written",
                        state.queue.len(),
                        self.writer.endpoint
                    ),
                    source: None,
                });
            }
            state.queue.push_back(job);
            state.waiting += 1;
            state.idle.pop().map(|slot| Lease::new(self, slot))
        };
        let _waiting = Waiting(self);
        loop {
            if let Some(lease) = slot.take() {
                let this = self.clone();
                Detached::new(async move {
                    if let Next::Orphaned = this.lead(lease).await {
                        this.spawn_drain();
                    }
                })
                .await;
            }
            tokio::select! {
                biased;
                result = &mut outcome => {
                    return result.unwrap_or_else(|_| Err(StoreError::Unavailable {
                        message: "the append was dropped before its outcome was known (retry with the same event ids)".into(),
                        source: None,
                    }));
                }
                () = self.handoff.notified() => slot = self.claim(),
            }
        }
    }

    /// Runs what is queued on a task of its own (nobody is left to lead it). Without a
    /// runtime to spawn on, the next append leads it.
    pub(super) fn spawn_drain(self: &Arc<Self>) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.clone().drain());
        }
    }

    /// An idle connection, if any is idle and anything queued can be sent.
    fn claim(self: &Arc<Self>) -> Option<Lease> {
        let mut state = self.lock();
        if state.runnable() {
            state.idle.pop().map(|slot| Lease::new(self, slot))
        } else {
            None
        }
    }

    /// Runs queued groups until nothing is queued (for jobs nobody waits for), or what
    /// is queued waits for a group that wakes the next leader itself.
    async fn drain(self: Arc<Self>) {
        while let Some(lease) = self.claim() {
            if let Next::Woken | Next::Blocked = self.lead(lease).await {
                return;
            }
        }
    }

    /// Runs one group on the leased connection and frees it.
    async fn lead(&self, mut lease: Lease) -> Next {
        let Some(slot) = lease.slot.as_mut() else {
            return Next::Idle; // A lease holds its slot until released.
        };
        let mut jobs = self.gather(slot, &mut lease.streams).await;
        if !jobs.is_empty() {
            slot.last = jobs.len();
            metrics::histogram!("tessera_append_group_size")
                .record(tessera_core::telemetry::value(jobs.len() as u64));
            // One lock order for stream rows across connections.
            jobs.sort_by(|a, b| a.append.stream.cmp(&b.append.stream));
            let again = self.writer.run_group(&mut slot.connection, jobs).await;
            let mut state = self.lock();
            for job in again.into_iter().rev() {
                state.queue.push_front(job);
            }
        }
        lease.release()
    }

    /// Takes the group to send ([`State::pick`]): queued jobs in order, one per stream
    /// and none of a stream another group is sending, up to the group limit, waiting a
    /// few yields for more while fewer are queued than the connection's last group
    /// held. The streams taken are recorded in `streams` and as running.
    async fn gather(&self, slot: &Slot, streams: &mut Vec<StreamId>) -> Vec<Job> {
        let target = slot.last.min(self.writer.max_group);
        let mut jobs: Vec<Job> = Vec::new();
        let mut yields = 0;
        loop {
            {
                let mut state = self.lock();
                let picked = state.pick(jobs.len(), self.writer.max_group);
                let solo = picked.len() == 1 && state.queue[picked[0]].solo;
                // Removed back to front, so the earlier indices stay valid.
                let taken: Vec<Job> = picked
                    .iter()
                    .rev()
                    .filter_map(|&i| state.queue.remove(i))
                    .collect();
                for job in taken.into_iter().rev() {
                    state.running.push(job.append.stream.clone());
                    streams.push(job.append.stream.clone());
                    jobs.push(job);
                }
                if solo {
                    return jobs;
                }
            }
            if jobs.is_empty() || jobs.len() >= target || yields >= GATHER_YIELDS {
                return jobs;
            }
            tokio::task::yield_now().await;
            yields += 1;
        }
    }

    /// Puts `slot` back with the idle ones, ends its group's hold on `streams`, and
    /// says who runs what is queued.
    pub(super) fn put_back(&self, slot: Slot, streams: &[StreamId]) -> Next {
        let next = {
            let mut state = self.lock();
            state.idle.push(slot);
            state.running.retain(|s| !streams.contains(s));
            if state.queue.is_empty() {
                Next::Idle
            } else if !state.runnable() {
                Next::Blocked
            } else if state.waiting > 0 {
                Next::Woken
            } else {
                Next::Orphaned
            }
        };
        if let Next::Woken = next {
            self.handoff.notify_one();
        }
        next
    }
}
