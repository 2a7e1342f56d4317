//! Group commit without a writer task: the caller whose append finds a connection free
//! leads a group (its own append and whatever else is queued) on that connection, in
//! its own task, and answers the others.
//!
//! A dedicated writer task costs every append two task hand-offs (caller to writer and
//! back), often across worker threads; here a leader's own append has none and the
//! others one each. The rules that keep this correct:
//!
//! - All bookkeeping (the queue, the idle connections, how many callers wait) is under
//!   one lock, so a job queued while every connection is busy is always seen by the
//!   leader that frees one: [`Committer::release`] runs under the same lock as
//!   [`Committer::submit`].
//! - A leader runs one group, frees its connection and, if jobs are left, wakes one
//!   waiting caller to lead the next; with no caller waiting (every one gave up) a task
//!   is spawned to run what is left, so a queued append never waits for a later one.
//! - A leader's group is never abandoned halfway: if its caller is dropped (an HTTP
//!   client went away), the rest of the group runs on a spawned task ([`Detached`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use deadpool_postgres::Object;
use tessera_core::{AppendOutcome, StoreError};
use tokio::sync::{oneshot, Notify};

use crate::job::Job;
use crate::writer::{one_per_stream, Writer};

/// How many times a leader lets other tasks run, while its group is smaller than the
/// last one on its connection, before it sends the group. Callers whose appends just
/// committed are then able to queue their next one into this group instead of the one
/// after. A connection whose last group held one append (no concurrency) does not wait.
const GATHER_YIELDS: usize = 16;

/// One of the store's append connections, with what it last did.
pub(crate) struct Slot {
    connection: Option<Object>,
    /// Appends in the last group sent on it.
    last: usize,
}

struct State {
    queue: VecDeque<Job>,
    idle: Vec<Slot>,
    /// Callers whose appends are queued or running and who are still waiting.
    waiting: usize,
}

/// The append queue and the connections that commit it.
pub(crate) struct Committer {
    writer: Writer,
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
}

impl Committer {
    pub(crate) fn new(writer: Writer, connections: usize) -> Self {
        let idle = (0..connections.max(1))
            .map(|_| Slot {
                connection: None,
                last: 1,
            })
            .collect();
        Self {
            writer,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle,
                waiting: 0,
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
            state.queue.push_back(job);
            state.waiting += 1;
            state.idle.pop()
        };
        let _waiting = Waiting(self);
        loop {
            if let Some(slot) = slot.take() {
                let this = self.clone();
                Detached::new(async move {
                    if let Next::Orphaned = this.lead(slot).await {
                        tokio::spawn(this.drain());
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

    /// An idle connection, if any is idle and anything is queued.
    fn claim(&self) -> Option<Slot> {
        let mut state = self.lock();
        if state.queue.is_empty() {
            None
        } else {
            state.idle.pop()
        }
    }

    /// Runs queued groups until nothing is queued (for jobs nobody waits for).
    async fn drain(self: Arc<Self>) {
        while let Some(slot) = self.claim() {
            if let Next::Woken = self.lead(slot).await {
                return;
            }
        }
    }

    /// Runs one group on `slot` and frees it.
    async fn lead(&self, mut slot: Slot) -> Next {
        let jobs = self.gather(&mut slot).await;
        if !jobs.is_empty() {
            slot.last = jobs.len();
            // One statement touches a stream once: later appends to a stream already in
            // the group wait for the next one, in their order.
            let (mut jobs, later) = one_per_stream(jobs);
            // One lock order for stream rows across connections.
            jobs.sort_by(|a, b| a.append.stream.cmp(&b.append.stream));
            let again = self.writer.run_group(&mut slot.connection, jobs).await;
            let mut state = self.lock();
            for job in later.into_iter().chain(again).rev() {
                state.queue.push_front(job);
            }
        }
        self.release(slot)
    }

    /// Takes the group to send: the job at the front alone if it must run alone,
    /// otherwise every queued job up to the group limit, waiting a few yields for more
    /// while fewer are queued than the connection's last group held.
    async fn gather(&self, slot: &mut Slot) -> Vec<Job> {
        let target = slot.last.min(self.writer.max_group);
        let mut jobs = Vec::new();
        let mut yields = 0;
        loop {
            {
                let mut state = self.lock();
                if jobs.is_empty() && state.queue.front().is_some_and(|j| j.solo) {
                    jobs.extend(state.queue.pop_front());
                    return jobs;
                }
                while jobs.len() < self.writer.max_group
                    && state.queue.front().is_some_and(|j| !j.solo)
                {
                    jobs.extend(state.queue.pop_front());
                }
            }
            if jobs.is_empty() || jobs.len() >= target || yields >= GATHER_YIELDS {
                return jobs;
            }
            tokio::task::yield_now().await;
            yields += 1;
        }
    }

    /// Returns `slot` to the idle ones and hands what is queued to somebody.
    fn release(&self, slot: Slot) -> Next {
        let next = {
            let mut state = self.lock();
            state.idle.push(slot);
            if state.queue.is_empty() {
                Next::Idle
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

/// Counts a caller as waiting while it lives; the last one to go while jobs are queued
/// and a connection is idle starts a task to run them.
struct Waiting<'a>(&'a Arc<Committer>);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let orphaned = {
            let mut state = self.0.lock();
            state.waiting -= 1;
            state.waiting == 0 && !state.queue.is_empty() && !state.idle.is_empty()
        };
        if orphaned {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(self.0.clone().drain());
            }
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
        if let Some(future) = self.0.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(future);
            }
        }
    }
}
