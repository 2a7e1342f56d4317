//! Group commit without a writer task: a caller whose append finds an append
//! connection free leads a group on it, in its own task: the appends at the front of
//! the queue (normally including its own), one per stream, and it answers the others.
//!
//! A dedicated writer task costs every append two task hand-offs (caller to writer and
//! back), often across worker threads; here a leader's own append usually has none and
//! the others one each. The rules that keep this correct:
//!
//! - All bookkeeping (the queue, the idle connections, how many callers are still
//!   there) is under one lock, so a job queued while every connection is busy is always
//!   seen by the leader that frees one: [`Lease::release`] runs under the same lock as
//!   the queueing in [`Committer::append`].
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
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use deadpool_postgres::Object;
use tessera_core::{AppendOutcome, StoreError, StreamId};
use tokio::sync::{oneshot, Notify};

use crate::job::Job;
use crate::writer::Writer;

/// How many times a leader lets other tasks run, while its group is smaller than the
/// last one on its connection, before it sends the group. Callers whose appends just
/// committed are then able to queue their next one into this group instead of the one
/// after. A connection whose last group held one append (no concurrency) does not wait.
const GATHER_YIELDS: usize = 16;

/// One of the store's append connections, with what it last did.
struct Slot {
    connection: Option<Object>,
    /// Appends in the last group sent on it.
    last: usize,
}

impl Drop for Slot {
    /// With the store: the connection closes instead of going back to the pool with
    /// the append connections' session settings (generic plans).
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = Object::take(connection);
        }
    }
}

struct State {
    queue: VecDeque<Job>,
    idle: Vec<Slot>,
    /// Callers whose appends are queued or running and who are still waiting.
    waiting: usize,
    /// The streams of the groups being gathered or sent (at most connections x group
    /// limit, so a scan beats hashing).
    running: Vec<StreamId>,
}

impl State {
    /// Indices, in queue order, of the jobs a group holding `held` jobs so far may take
    /// next: up to `max`, one per stream, none of a stream another group is sending; a
    /// job that must run alone is taken only as the whole group, and otherwise stops
    /// the taking.
    fn pick(&self, held: usize, max: usize) -> Vec<usize> {
        let mut picked: Vec<usize> = Vec::new();
        for (i, job) in self.queue.iter().enumerate() {
            if held + picked.len() >= max {
                break;
            }
            let stream = &job.append.stream;
            if self.running.contains(stream)
                || picked
                    .iter()
                    .any(|&p| self.queue[p].append.stream == *stream)
            {
                continue; // stays queued, in its place, behind its stream's group
            }
            if job.solo {
                if held == 0 && picked.is_empty() {
                    picked.push(i);
                }
                break;
            }
            picked.push(i);
        }
        picked
    }

    /// Whether a leader would find anything to send now.
    fn runnable(&self) -> bool {
        !self.pick(0, 1).is_empty()
    }
}

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
enum Next {
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

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; recover the data if something did.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `job` and waits for its outcome, leading groups whenever it is this
    /// caller's turn.
    pub(crate) async fn append(
        self: &Arc<Self>,
        job: Job,
        mut outcome: oneshot::Receiver<Result<AppendOutcome, StoreError>>,
    ) -> Result<AppendOutcome, StoreError> {
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
    fn spawn_drain(self: &Arc<Self>) {
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
    fn put_back(&self, slot: Slot, streams: &[StreamId]) -> Next {
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

/// A connection taken from the idle ones. Dropped without [`Lease::release`] (a group
/// that panicked, or was dropped with no runtime to finish on), it goes back without
/// its connection, which is detached from the pool (a statement may be in flight on
/// it), and whoever is queued is woken or given a task.
struct Lease {
    committer: Arc<Committer>,
    slot: Option<Slot>,
    /// The streams of the group on it, held from the other groups until it ends.
    streams: Vec<StreamId>,
}

impl Lease {
    fn new(committer: &Arc<Committer>, slot: Slot) -> Self {
        Self {
            committer: committer.clone(),
            slot: Some(slot),
            streams: Vec::new(),
        }
    }

    /// Frees the connection and its streams; what is queued goes to a waiting caller
    /// (woken here) or, when [`Next::Orphaned`], to whoever the caller starts.
    fn release(mut self) -> Next {
        match self.slot.take() {
            Some(slot) => self.committer.put_back(slot, &self.streams),
            None => Next::Idle,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(mut slot) = self.slot.take() {
            if let Some(connection) = slot.connection.take() {
                let _ = Object::take(connection);
            }
            if let Next::Orphaned = self.committer.put_back(slot, &self.streams) {
                self.committer.spawn_drain();
            }
        }
    }
}

/// Counts a caller as waiting while it lives; the last one to go while jobs are queued
/// and a connection is idle starts a task to run them.
struct Waiting<'a>(&'a Arc<Committer>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let orphaned = {
            let mut state = self.0.lock();
            state.waiting -= 1;
            state.waiting == 0 && state.runnable() && !state.idle.is_empty()
        };
        if orphaned {
            self.0.spawn_drain();
        }
    }
}

/// A future that, when dropped before it is done, finishes on a spawned task instead
/// of stopping where it was.
struct Detached<F: Future<Output = ()> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output = ()> + Send + 'static> Detached<F> {
    fn new(future: F) -> Self {
        Self(Some(Box::pin(future)))
    }
}

impl<F: Future<Output = ()> + Send + 'static> Future for Detached<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(future) = self.0.as_mut() else {
            return Poll::Ready(());
        };
        let done = future.as_mut().poll(cx);
        if done.is_ready() {
            self.0 = None;
        }
        done
    }
}

impl<F: Future<Output = ()> + Send + 'static> Drop for Detached<F> {
    fn drop(&mut self) {
        // A future that panicked cannot be polled again; its lease puts the
        // connection back as it unwinds.
        if std::thread::panicking() {
            return;
        }
        if let Some(future) = self.0.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(future);
            }
        }
    }
}
