//! The reader a subscription polls: the store, with every read traced under the
//! subscription's span (the polling loop runs in a task of its own), and a prompt
//! re-read when committed events are still hidden behind an older open transaction.
//!
//! A notification can arrive while the events it announces are not yet visible to
//! readers (an older transaction is still running). Without the re-check the next read
//! would wait for the poll interval; with it, the store's subscriptions are woken again
//! shortly, backing off up to half a second (or the poll interval, if shorter) while the
//! older transaction stays open. One re-check is pending at a time for the whole store:
//! it wakes every subscription, as a notification does, so one per subscription would
//! multiply (each wake-up finding the events still hidden would schedule another).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tessera_core::{
    EventFilter, EventId, EventReader, Position, ReadAll, ReadStream, RecordedEvent, StoreError,
    StreamId, Subscription, Version,
};
use tracing::{Instrument, Span};

use crate::PostgresStore;

/// The first re-check's delay. Events are hidden mostly by another writer's transaction
/// of a few milliseconds (a runner's, a saga's, an append to another store), whose end
/// wakes nothing here: at 10 ms, one such wait in an order's path was a tenth of its
/// place → confirmed time at low rates (issue 22); doubling from 1 ms finds the end
/// within a millisecond or two and costs a long-held transaction a few more reads.
const FIRST_RECHECK_MS: u64 = 1;
const MAX_RECHECK_MS: u64 = 500;

#[derive(Clone, Debug)]
pub(crate) struct Traced {
    store: PostgresStore,
    span: Span,
    /// `(after, scanned)`: after the subscription's position `after`, no wanted event
    /// lies up to `scanned` (a short read looked that far). The next read from `after`
    /// starts at `scanned`, so a subscription wanting few events of a busy log joins
    /// the shared reader's buffer instead of re-reading the same stretch.
    scanned: Arc<Mutex<Option<(Position, Position)>>>,
}

impl Traced {
    pub(crate) fn new(store: PostgresStore, span: Span) -> Self {
        Self {
            store,
            span,
            scanned: Arc::default(),
        }
    }

    /// Where a read from `after` may start.
    fn start(&self, after: Position) -> Position {
        match *self.scanned.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((from, scanned)) if from == after => scanned.max(after),
            _ => after,
        }
    }

    /// Remembers how far a read from `after` looked, given what it returned.
    fn remember(&self, after: Position, events: &[RecordedEvent], scanned: Position) {
        let next = events.last().map_or(after, |e| e.position);
        *self.scanned.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((next, scanned.max(next)));
    }

    /// After a short read: if committed events are hidden (`hidden`, checked in the
    /// read's transaction), have the store's subscriptions woken again shortly.
    fn recheck_if_hidden(&self, hidden: Option<bool>) {
        let inner = self.store.inner();
        // Unknown (the check failed): check again shortly instead of leaving hidden
        // events to the next poll, which may be far off.
        let hidden = hidden.unwrap_or(true);
        let poll = u64::try_from(inner.subscription.poll_interval.as_millis()).unwrap_or(u64::MAX);
        inner.recheck.after_check(hidden, poll, &inner.appended);
    }
}

/// The store-wide re-check: at most one pending wake-up, after a delay that doubles
/// while events stay hidden and starts again once a check finds none.
#[derive(Debug)]
pub(crate) struct Recheck {
    pending: AtomicBool,
    delay_ms: AtomicU64,
    /// Wake-ups sent so far (for tests that count wake-ups by cause).
    sent: AtomicU64,
}

impl Default for Recheck {
    fn default() -> Self {
        Self {
            pending: AtomicBool::new(false),
            delay_ms: AtomicU64::new(FIRST_RECHECK_MS),
            sent: AtomicU64::new(0),
        }
    }
}

impl Recheck {
    /// Wake-ups sent so far.
    pub(crate) fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Records a check's answer; when events are hidden and no wake-up is pending,
    /// schedules one that bumps `appended` (waking every subscription).
    pub(crate) fn after_check(
        self: &Arc<Self>,
        hidden: bool,
        poll_ms: u64,
        appended: &tokio::sync::watch::Sender<u64>,
    ) {
        if !hidden {
            self.delay_ms.store(FIRST_RECHECK_MS, Ordering::Relaxed);
            return;
        }
        if self.pending.swap(true, Ordering::AcqRel) {
            return; // one is on its way and will wake this subscription too
        }
        let delay = self
            .delay_ms
            .load(Ordering::Relaxed)
            .min(poll_ms.min(MAX_RECHECK_MS));
        self.delay_ms
            .store(delay.saturating_mul(2), Ordering::Relaxed);
        let (pending, appended) = (Pending(Arc::clone(self)), appended.clone());
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            // Cleared first: the reads this wakes may schedule the next one.
            drop(pending);
            this.sent.fetch_add(1, Ordering::Relaxed);
            appended.send_modify(|v| *v = v.wrapping_add(1));
        });
    }
}

/// The pending wake-up's claim: cleared when the wake-up is sent, or when its task is
/// dropped before (a runtime shutting down), so the next check can schedule another.
struct Pending(Arc<Recheck>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.pending.store(false, Ordering::Release);
    }
}

impl EventReader for Traced {
    async fn read_stream(
        &self,
        stream: &StreamId,
        read: ReadStream,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.store
            .read_stream(stream, read)
            .instrument(self.span.clone())
            .await
    }

    async fn read_all(&self, read: ReadAll) -> Result<Vec<RecordedEvent>, StoreError> {
        let after = read.after;
        let start = self.start(after);
        let tail = &self.store.inner().tail;
        if let Some(answer) = tail.read(start, &read.filter, read.limit) {
            self.remember(after, &answer.events, answer.scanned);
            return Ok(answer.events);
        }
        // Behind the shared reader's buffer (or no shared reader): the database. Every
        // event the shared reader has read is visible to this read, which starts later.
        let seen = tail.seen();
        let read = ReadAll::after(start, read.limit).filter(read.filter);
        let span = tracing::debug_span!(parent: &self.span, "read_all", after = %read.after, batch = read.limit);
        let result = self
            .store
            .inner()
            .read_all_checked(&read, true)
            .instrument(span.clone())
            .await;
        match result {
            Ok((events, hidden)) => {
                tracing::trace!(parent: &span, events = events.len(), "read");
                if events.len() < read.limit {
                    self.recheck_if_hidden(hidden);
                    let scanned = seen.unwrap_or(start).max(start);
                    self.remember(after, &events, scanned);
                }
                Ok(events)
            }
            Err(e) => {
                tracing::debug!(parent: &span, error = %e, "read failed");
                Err(e)
            }
        }
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<Option<Version>, StoreError> {
        self.store.stream_version(stream).await
    }

    async fn head(&self) -> Result<Option<Position>, StoreError> {
        self.store.head().await
    }

    async fn find_event(
        &self,
        stream: &StreamId,
        id: EventId,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        self.store.find_event(stream, id).await
    }

    fn subscribe(&self, after: Position, filter: EventFilter) -> Subscription {
        self.store.subscribe(after, filter)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Recheck, FIRST_RECHECK_MS};

    #[tokio::test(start_paused = true)]
    async fn many_subscriptions_finding_hidden_events_schedule_one_wake_up_at_a_time() {
        let (appended, mut rx) = tokio::sync::watch::channel(0u64);
        let recheck = Arc::new(Recheck::default());
        let asked = tokio::time::Instant::now();
        for _ in 0..50 {
            recheck.after_check(true, 250, &appended);
        }
        rx.changed().await.expect("a wake-up");
        assert_eq!(asked.elapsed(), Duration::from_millis(FIRST_RECHECK_MS));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(*rx.borrow_and_update(), 1, "one wake-up for fifty checks");
        // Still hidden: the next one comes after twice the delay, and again only one.
        let asked = tokio::time::Instant::now();
        for _ in 0..50 {
            recheck.after_check(true, 250, &appended);
        }
        rx.changed().await.expect("a wake-up");
        assert_eq!(
            asked.elapsed(),
            Duration::from_millis(FIRST_RECHECK_MS * 2),
            "after twice the delay"
        );
        assert_eq!(*rx.borrow_and_update(), 2);
        // Nothing hidden any more: no wake-up, and the delay starts again.
        recheck.after_check(false, 250, &appended);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(*rx.borrow(), 2);
        recheck.after_check(true, 250, &appended);
        tokio::time::sleep(Duration::from_millis(FIRST_RECHECK_MS + 1)).await;
        assert_eq!(*rx.borrow(), 3);
    }

    #[test]
    fn a_wake_up_dropped_with_its_runtime_does_not_block_the_next() {
        let (appended, rx) = tokio::sync::watch::channel(0u64);
        let recheck = Arc::new(Recheck::default());
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap()
        };
        // Scheduled, then its runtime goes away before it fires.
        runtime().block_on(async { recheck.after_check(true, 250, &appended) });
        runtime().block_on(async {
            recheck.after_check(true, 250, &appended);
            tokio::time::sleep(Duration::from_millis(100)).await;
        });
        assert_eq!(*rx.borrow(), 1, "the second check scheduled a wake-up");
    }
}
