//! The publish window: at most `max` publishes sent and not yet acknowledged on a bus,
//! across sends, in one queue, oldest first.
//!
//! Nobody owns an acknowledgement: whoever needs it awaits the oldest one still
//! queued, as a client publishing in a loop does. A send waiting for room in the window
//! awaits the oldest (of its own batch or an earlier one), and a batch's confirmation
//! awaits the oldest up to its own last, each time noting the outcome in the batch the
//! acknowledgement belongs to. So an acknowledgement wakes the one task that awaits it,
//! and the window moves on whether or not a batch's confirmation is awaited.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_nats::jetstream::context::PublishAckFuture;
use futures_util::future::select;
use tessera_projections::integration::BusError;
use tokio::sync::Notify;

use crate::NatsBus;

/// The window of one bus (its clones share it).
pub(crate) struct Window {
    max: usize,
    state: Mutex<State>,
    /// An acknowledgement was taken out of the window.
    freed: Notify,
    /// No send is under way any more.
    idle: Notify,
}

/// A send under way, until dropped.
pub(crate) struct Sending<'w>(&'w Window);

impl Drop for Sending<'_> {
    fn drop(&mut self) {
        let idle = {
            let mut state = self.0.lock();
            state.sending -= 1;
            state.sending == 0
        };
        if idle {
            self.0.idle.notify_waiters();
        }
    }
}

#[derive(Default)]
struct State {
    /// Sent, not awaited by anyone yet, oldest first.
    queue: VecDeque<InFlight>,
    /// Being awaited.
    taken: usize,
    /// Sends under way (each awaits acknowledgements itself while the window is full).
    sending: usize,
    /// Batches started so far (their numbers).
    batches: u64,
}

/// A publish sent, its acknowledgement still to come.
pub(crate) struct InFlight {
    pub(crate) ack: PublishAckFuture,
    pub(crate) batch: Arc<Batch>,
    /// For an error: the message id (its 128 bits) and its stream.
    pub(crate) id: u128,
    pub(crate) stream: Arc<str>,
}

/// The messages of one send: how many acknowledgements are outstanding and the first
/// error.
pub(crate) struct Batch {
    number: u64,
    state: Mutex<BatchState>,
    done: Notify,
}

#[derive(Default)]
struct BatchState {
    outstanding: usize,
    /// Every message is sent (no more to come).
    sealed: bool,
    error: Option<BusError>,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, BatchState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One more message sent.
    pub(crate) fn add(&self) {
        self.lock().outstanding += 1;
    }

    /// Every message is sent.
    pub(crate) fn seal(&self) {
        self.lock().sealed = true;
        self.done.notify_waiters();
    }

    fn record(&self, outcome: Result<(), BusError>) {
        {
            let mut state = self.lock();
            state.outstanding = state.outstanding.saturating_sub(1);
            if let Err(e) = outcome {
                state.error.get_or_insert(e);
            }
        }
        self.done.notify_waiters();
    }

    fn failed(&self) -> bool {
        self.lock().error.is_some()
    }

    /// The outcome once known: the first error, or `Ok` once all are acknowledged.
    fn outcome(&self) -> Option<Result<(), BusError>> {
        let mut state = self.lock();
        if let Some(e) = state.error.take() {
            // Handed out once; a second look sees the batch failed all the same.
            state.error = Some(BusError::NotConfirmed(e.to_string()));
            return Some(Err(e));
        }
        (state.sealed && state.outstanding == 0).then_some(Ok(()))
    }
}

/// An acknowledgement being awaited: given back to the window however that ends (an
/// abandoned wait counts as not confirmed).
struct Taken<'w> {
    window: &'w Window,
    batch: Arc<Batch>,
    recorded: bool,
}

impl Taken<'_> {
    fn record(mut self, outcome: Result<(), BusError>) {
        self.batch.record(outcome);
        self.recorded = true;
    }
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.batch.record(Err(BusError::NotConfirmed(
                "the wait for its acknowledgement was abandoned".into(),
            )));
        }
        self.window.lock().taken -= 1;
        self.window.freed.notify_waiters();
    }
}

impl Window {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            state: Mutex::default(),
            freed: Notify::new(),
            idle: Notify::new(),
        }
    }

    /// A send starts: until it ends, confirmations leave the acknowledgements to it.
    pub(crate) fn sending(&self) -> Sending<'_> {
        self.lock().sending += 1;
        Sending(self)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new batch, after every earlier one.
    pub(crate) fn batch(&self) -> Arc<Batch> {
        let mut state = self.lock();
        state.batches += 1;
        Arc::new(Batch {
            number: state.batches,
            state: Mutex::default(),
            done: Notify::new(),
        })
    }

    /// Waits until one more publish fits in the window, awaiting the oldest
    /// acknowledgements meanwhile.
    pub(crate) async fn reserve(&self, bus: &NatsBus) {
        loop {
            let freed = self.freed.notified();
            let oldest = {
                let mut state = self.lock();
                if state.queue.len() + state.taken < self.max {
                    return;
                }
                self.take(&mut state, u64::MAX)
            };
            match oldest {
                Some(oldest) => self.settle(bus, oldest).await,
                // All awaited by others: wait for one of them.
                None => freed.await,
            }
        }
    }

    /// Queues a publish just sent.
    pub(crate) fn push(&self, sent: InFlight) {
        sent.batch.add();
        self.lock().queue.push_back(sent);
    }

    /// Waits for `batch`'s outcome. While no send is under way, it awaits the
    /// acknowledgements up to the batch's last itself; while one is, that send awaits
    /// them (as the window fills), so that each acknowledgement wakes one task, the one
    /// that sends on.
    pub(crate) async fn confirm(&self, bus: &NatsBus, batch: &Batch) -> Result<(), BusError> {
        loop {
            let done = pin!(batch.done.notified());
            let idle = pin!(self.idle.notified());
            if let Some(outcome) = batch.outcome() {
                return outcome;
            }
            let (oldest, sending) = {
                let mut state = self.lock();
                if state.sending > 0 {
                    (None, true)
                } else {
                    (self.take(&mut state, batch.number), false)
                }
            };
            match oldest {
                Some(oldest) => self.settle(bus, oldest).await,
                None if sending => {
                    // Its acknowledgements are the send's to await; wait for them or
                    // for the send to end.
                    let _either = select(done, idle).await;
                }
                // Its last ones are awaited by others.
                None => done.await,
            }
        }
    }

    /// The oldest queued publish, if one of batch `up_to` or an earlier one is still
    /// queued (sends on clones of a bus may interleave).
    fn take<'w>(&'w self, state: &mut State, up_to: u64) -> Option<(InFlight, Taken<'w>)> {
        let due = |sent: &InFlight| sent.batch.number <= up_to;
        if !due(state.queue.front()?) && !state.queue.iter().any(due) {
            return None;
        }
        let sent = state.queue.pop_front()?;
        state.taken += 1;
        let taken = Taken {
            window: self,
            batch: Arc::clone(&sent.batch),
            recorded: false,
        };
        Some((sent, taken))
    }

    async fn settle(&self, bus: &NatsBus, (sent, taken): (InFlight, Taken<'_>)) {
        let outcome = bus.confirmed(sent.id, &sent.stream, sent.ack).await;
        let failed = outcome.is_err();
        taken.record(outcome);
        if failed {
            // The rest of a failed batch is sent again by the caller: waiting for their
            // acknowledgements (each up to the request timeout) would only hold up the
            // window.
            let abandoned: VecDeque<InFlight> = {
                let mut state = self.lock();
                let (abandoned, kept) = std::mem::take(&mut state.queue)
                    .into_iter()
                    .partition(|s| s.batch.failed());
                state.queue = kept;
                abandoned
            };
            drop(abandoned);
            self.freed.notify_waiters();
        }
    }
}
