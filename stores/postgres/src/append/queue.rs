//! The append queue. An append waits in it as a [`Job`], with the channel its caller
//! hears back on; [`State`] is everything kept under the queue's one lock, and
//! [`State::pick`] says which queued appends the next group may take.

use std::collections::VecDeque;

use tessera_core::{AppendOutcome, Landing, StoreError, StreamId};
use tokio::sync::oneshot;
use tracing::Span;

use super::encode::Append;
use super::lease::Slot;

/// Times a job is run again (a refused append whose stream then met the expectation, a
/// statement that lost to another transaction) before it fails.
const MAX_ATTEMPTS: u32 = 8;

/// An append waiting for its transaction.
pub(crate) struct Job {
    pub(super) append: Append,
    pub(super) reply: oneshot::Sender<Result<(AppendOutcome, Landing), StoreError>>,
    pub(super) span: Span,
    pub(super) attempts: u32,
    /// Run in a transaction of its own (after its group failed).
    pub(super) solo: bool,
}

impl Job {
    pub(crate) fn new(
        append: Append,
        reply: oneshot::Sender<Result<(AppendOutcome, Landing), StoreError>>,
    ) -> Self {
        Self {
            append,
            reply,
            span: Span::current(),
            attempts: 0,
            solo: false,
        }
    }

    pub(super) fn finish(self, result: Result<(AppendOutcome, Landing), StoreError>, group: usize) {
        self.span.record("tessera.append.group_size", group);
        match &result {
            Ok((o, _)) => {
                tracing::debug!(parent: &self.span, group, version = o.version.0, position = %o.position, "appended")
            }
            Err(e) => tracing::debug!(parent: &self.span, group, error = %e, "append refused"),
        }
        let _ = self.reply.send(result); // The caller may have given up waiting.
    }

    /// The job to queue again, or none once it has run [`MAX_ATTEMPTS`] times (then it
    /// fails, as kept conflicting).
    pub(super) fn attempt_again(mut self, n: usize) -> Option<Self> {
        self.attempts += 1;
        if self.attempts < MAX_ATTEMPTS {
            return Some(self);
        }
        let stream = self.append.stream.clone();
        self.finish(
            Err(StoreError::Backend {
                message: format!(
                    "append to stream {stream} kept conflicting with concurrent writers"
                ),
                source: None,
            }),
            n,
        );
        None
    }
}

/// The same failure for another waiter (the source is not cloneable).
pub(super) fn copy(e: &StoreError) -> StoreError {
    let message = e.to_string();
    if e.is_transient() {
        StoreError::Unavailable {
            message,
            source: None,
        }
    } else {
        StoreError::Backend {
            message,
            source: None,
        }
    }
}

/// The queue and the rest of the bookkeeping callers and leaders share, under one lock.
pub(super) struct State {
    pub(super) queue: VecDeque<Job>,
    pub(super) idle: Vec<Slot>,
    /// Callers whose appends are queued or running and who are still waiting.
    pub(super) waiting: usize,
    /// The streams of the groups being gathered or sent (at most connections x group
    /// limit, so a scan beats hashing).
    pub(super) running: Vec<StreamId>,
}

impl State {
    /// Indices, in queue order, of the jobs a group holding `held` jobs so far may take
    /// next: up to `max`, one per stream, none of a stream another group is sending; a
    /// job that must run alone is taken only as the whole group, and otherwise stops
    /// the taking.
    pub(super) fn pick(&self, held: usize, max: usize) -> Vec<usize> {
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
    pub(super) fn runnable(&self) -> bool {
        !self.pick(0, 1).is_empty()
    }
}
