//! What keeps the queue moving whatever happens to a leader or a caller: the append
//! connection a leader holds ([`Lease`]: back with the idle ones however its group
//! ends), the count of callers still waiting ([`Waiting`]: the last to go starts a task
//! for what is queued), and a leader's group finishing after its caller is dropped
//! ([`Detached`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use deadpool_postgres::Object;
use tessera_core::StreamId;

use super::lead::{Committer, Next};

/// One of the store's append connections, with what it last did.
pub(super) struct Slot {
    pub(super) connection: Option<Object>,
    /// Appends in the last group sent on it.
    pub(super) last: usize,
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

/// A connection taken from the idle ones. Dropped without [`Lease::release`] (a group
/// that panicked, or was dropped with no runtime to finish on), it goes back without
/// its connection, which is detached from the pool (a statement may be in flight on
/// it), and whoever is queued is woken or given a task.
pub(super) struct Lease {
    committer: Arc<Committer>,
    pub(super) slot: Option<Slot>,
    /// The streams of the group on it, held from the other groups until it ends.
    pub(super) streams: Vec<StreamId>,
}

impl Lease {
    pub(super) fn new(committer: &Arc<Committer>, slot: Slot) -> Self {
        Self {
            committer: committer.clone(),
            slot: Some(slot),
            streams: Vec::new(),
        }
    }

    /// Frees the connection and its streams; what is queued goes to a waiting caller
    /// (woken here) or, when [`Next::Orphaned`], to whoever the caller starts.
    pub(super) fn release(mut self) -> Next {
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
pub(super) struct Waiting<'a>(pub(super) &'a Arc<Committer>);

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
pub(super) struct Detached<F: Future<Output = ()> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output = ()> + Send + 'static> Detached<F> {
    pub(super) fn new(future: F) -> Self {
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
