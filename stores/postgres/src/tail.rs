//! One reader of the log per store, shared by its subscriptions.
//!
//! Each subscription used to poll the log itself: every append's notification woke
//! every subscription of the store, and each ran a read transaction of its own, whether
//! it wanted one event or none (issue 22 counted 7 of an order's 35 transactions there).
//! Now one task per store, the tail, reads the whole log forward from the head it found
//! when it started and keeps the newest events in a bounded buffer; a subscription whose
//! position lies inside the buffer reads from memory and waits on the tail's wake-up.
//! One that is behind the buffer (catching up, or slower than the buffer is long) reads
//! the database as before, until its position reaches the buffer.
//!
//! The buffer holds every event of the log in `(from, to]`, read by the query the
//! subscriptions ran themselves (rows of transactions older than every running one), so
//! answering a read in that range from memory gives exactly what the database would have,
//! up to `to`: the gap-free rule holds unchanged. When the tail cannot read (a stored event
//! it cannot decode, the store dropped, its runtime gone) it stops serving and
//! subscriptions read the database themselves, reporting what they find as before.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tessera_core::{EventFilter, Position, ReadAll, RecordedEvent, SubscriptionConfig};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::store::Inner;

/// Events the tail keeps unless the builder says otherwise.
pub(crate) const DEFAULT_CAPACITY: usize = 4096;

/// The shared reader of one store's log, and its buffer.
pub(crate) struct Tail {
    capacity: usize,
    state: Mutex<State>,
    /// Changes after the buffer grew (and when the tail stops): the wake-up of every
    /// subscription reading through it.
    advanced: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// A task is running (or about to): set by [`Tail::subscribe`], cleared by the task
    /// when it stops.
    running: bool,
    /// Which task is the current one: a task that stopped, and whose clean-up runs
    /// after a new one started, must not touch the new one's state.
    generation: u64,
    task: Option<JoinHandle<()>>,
    /// The buffer answers reads (the task found its start and has not failed).
    serving: bool,
    /// Every event of the log after `from` and up to `to` is in `events`, in order.
    from: Position,
    to: Position,
    events: VecDeque<RecordedEvent>,
}

/// What the buffer says to a read.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The wanted events after the read's position, at most its limit.
    pub(crate) events: Vec<RecordedEvent>,
    /// Every wanted event after the read's position and up to here is in `events`.
    pub(crate) scanned: Position,
}

impl Tail {
    /// A tail keeping up to `capacity` events (0: no tail; subscriptions read the
    /// database themselves).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::default(),
            advanced: watch::channel(0).0,
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent through every panic-free section below.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The wake-up of a subscription reading through the tail; starts the tail's task
    /// (woken by `appended`) unless it runs.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        store: Weak<Inner>,
        appended: watch::Receiver<u64>,
        config: SubscriptionConfig,
    ) -> watch::Receiver<u64> {
        let mut state = self.lock();
        let wakeup = self.advanced.subscribe();
        if !state.running {
            state.running = true;
            state.generation = state.generation.wrapping_add(1);
            state.serving = false;
            state.events.clear();
            let task = run(Arc::clone(self), state.generation, store, appended, config);
            state.task = Some(tokio::spawn(task));
        }
        wakeup
    }

    /// Stops the task (the store is dropped).
    pub(crate) fn abort(&self) {
        if let Some(task) = self.lock().task.take() {
            task.abort();
        }
    }

    /// The wanted events after `after`, at most `limit`, if the buffer can answer:
    /// `None` when the tail does not serve or `after` lies before the buffer.
    pub(crate) fn read(
        &self,
        after: Position,
        filter: &EventFilter,
        limit: usize,
    ) -> Option<Answer> {
        let state = self.lock();
        if !state.serving || after < state.from {
            return None;
        }
        let start = state.events.partition_point(|e| e.position <= after);
        let mut events = Vec::new();
        for event in state.events.range(start..) {
            if filter.matches(event) {
                events.push(event.clone());
                if events.len() >= limit.max(1) {
                    let scanned = event.position;
                    return Some(Answer { events, scanned });
                }
            }
        }
        let scanned = state.to.max(after);
        Some(Answer { events, scanned })
    }

    /// How far the tail has read, while it serves: every event up to here is visible
    /// to any read that starts later.
    pub(crate) fn seen(&self) -> Option<Position> {
        let state = self.lock();
        state.serving.then_some(state.to)
    }

    /// The state, if task `generation` is still the current one.
    fn current(&self, generation: u64) -> Option<MutexGuard<'_, State>> {
        let state = self.lock();
        (state.generation == generation).then_some(state)
    }

    fn start_at(&self, generation: u64, head: Position) {
        let Some(mut state) = self.current(generation) else {
            return;
        };
        state.from = head;
        state.to = head;
        state.events.clear();
        state.serving = true;
        drop(state);
        self.bump();
    }

    fn to(&self) -> Position {
        self.lock().to
    }

    fn push(&self, generation: u64, events: Vec<RecordedEvent>) {
        if events.is_empty() {
            return;
        }
        let Some(mut state) = self.current(generation) else {
            return;
        };
        for event in events {
            state.to = event.position;
            state.events.push_back(event);
        }
        while state.events.len() > self.capacity {
            if let Some(old) = state.events.pop_front() {
                state.from = old.position;
            }
        }
        drop(state);
        self.bump();
    }

    /// Stops serving: subscriptions read the database from here on.
    fn fail(&self, generation: u64) {
        let Some(mut state) = self.current(generation) else {
            return;
        };
        state.serving = false;
        state.events.clear();
        drop(state);
        self.bump();
    }

    /// Whether anyone still reads through the tail; if not, marks it stopped (under the
    /// lock [`Self::subscribe`] takes, so a new subscription starts a new task).
    fn keep_running(&self, generation: u64) -> bool {
        let Some(mut state) = self.current(generation) else {
            return false;
        };
        if self.advanced.receiver_count() > 0 {
            return true;
        }
        state.running = false;
        state.serving = false;
        state.events.clear();
        false
    }

    /// Marks task `generation` stopped, if it is still the current one.
    fn stopped(&self, generation: u64) {
        let Some(mut state) = self.current(generation) else {
            return;
        };
        state.running = false;
        state.serving = false;
        state.events.clear();
        drop(state);
        self.bump();
    }

    fn bump(&self) {
        self.advanced.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// Marks the tail stopped when its task ends, by returning or by being dropped with its
/// runtime, so that the next subscription starts another and reads meanwhile go to
/// the database.
struct Stopped(Arc<Tail>, u64);

impl Drop for Stopped {
    fn drop(&mut self) {
        self.0.stopped(self.1);
    }
}

async fn run(
    tail: Arc<Tail>,
    generation: u64,
    store: Weak<Inner>,
    mut appended: watch::Receiver<u64>,
    config: SubscriptionConfig,
) {
    let _stopped = Stopped(Arc::clone(&tail), generation);
    let batch = config.batch_size.max(1);
    let poll = config.poll_interval;
    let mut retry = config.retry_delay;
    let mut started = false;
    loop {
        if !tail.keep_running(generation) {
            return;
        }
        appended.borrow_and_update();
        let Some(inner) = store.upgrade() else {
            return;
        };
        if !started {
            // Where the log ends now; what lies before is read by each subscription
            // from the database.
            match inner.head().await {
                Ok(head) => {
                    tail.start_at(generation, head.unwrap_or(Position::START));
                    started = true;
                    continue;
                }
                Err(e) if e.is_transient() => {
                    drop(inner);
                    tracing::debug!(error = %e, "the log's shared reader cannot start yet; retrying");
                    retry = back_off(retry, &mut appended).await;
                    continue;
                }
                Err(e) => {
                    drop(inner);
                    tracing::warn!(error = %e, "the log's shared reader cannot start; subscriptions read the log themselves");
                    forward(&tail, generation, &mut appended, poll).await;
                    return;
                }
            }
        }
        let read = ReadAll::after(tail.to(), batch);
        match inner.read_all_checked(&read, true).await {
            Ok((events, hidden)) => {
                retry = config.retry_delay;
                let full = events.len() >= batch;
                tail.push(generation, events);
                if !full {
                    let poll_ms = u64::try_from(poll.as_millis()).unwrap_or(u64::MAX);
                    // Unknown (the check failed): check again shortly.
                    let hidden = hidden.unwrap_or(true);
                    inner.recheck.after_check(hidden, poll_ms, &inner.appended);
                    drop(inner);
                    tokio::select! {
                        _ = appended.changed() => {}
                        () = tokio::time::sleep(poll) => {}
                    }
                }
            }
            Err(e) if e.is_transient() => {
                drop(inner);
                tracing::debug!(error = %e, "the log's shared reader failed to read; retrying");
                retry = back_off(retry, &mut appended).await;
            }
            Err(e) => {
                drop(inner);
                tracing::warn!(error = %e, after = %read.after, "the log's shared reader stops; subscriptions read the log themselves");
                tail.fail(generation);
                forward(&tail, generation, &mut appended, poll).await;
                return;
            }
        }
    }
}

/// Waits `retry` (or less, if an append is announced), and gives the next wait.
async fn back_off(retry: Duration, appended: &mut watch::Receiver<u64>) -> Duration {
    tokio::select! {
        _ = appended.changed() => {}
        () = tokio::time::sleep(retry) => {}
    }
    (retry * 2).min(Duration::from_secs(5))
}

/// A tail that cannot serve still wakes the subscriptions waiting on it whenever the
/// store announces an append, for as long as any subscribes.
async fn forward(
    tail: &Tail,
    generation: u64,
    appended: &mut watch::Receiver<u64>,
    poll: Duration,
) {
    loop {
        tokio::select! {
            changed = appended.changed() => {
                if changed.is_err() {
                    return;
                }
                tail.bump();
            }
            () = tokio::time::sleep(poll) => {}
        }
        if !tail.keep_running(generation) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use tessera_core::{EventData, EventId, Metadata, StreamId, Version};

    use super::*;

    fn event(stream: &str, n: u64) -> RecordedEvent {
        RecordedEvent {
            id: EventId::random(),
            stream_id: StreamId::new(stream).unwrap(),
            version: Version(n),
            position: Position {
                commit: 10 + n,
                prepare: n,
            },
            event_type: "Happened".to_owned(),
            schema_version: 1,
            data: EventData::from_trusted_json(&b"{}"[..]),
            metadata: Metadata::default(),
            recorded_at: SystemTime::now(),
        }
    }

    fn serving(capacity: usize, start: Position) -> Tail {
        let tail = Tail::new(capacity);
        tail.start_at(0, start);
        tail
    }

    #[test]
    fn a_read_inside_the_buffer_gets_every_wanted_event_after_it_in_order() {
        let tail = serving(100, Position::START);
        tail.push(
            0,
            (1..=6)
                .map(|n| event(if n % 2 == 0 { "a-1" } else { "b-1" }, n))
                .collect(),
        );
        let all = EventFilter::all();
        let answer = tail.read(event("x-1", 2).position, &all, 100).unwrap();
        let versions: Vec<u64> = answer.events.iter().map(|e| e.version.0).collect();
        assert_eq!(versions, [3, 4, 5, 6]);
        assert_eq!(answer.scanned, event("x-1", 6).position);
        let only_a = EventFilter::category("a");
        let answer = tail.read(Position::START, &only_a, 100).unwrap();
        let versions: Vec<u64> = answer.events.iter().map(|e| e.version.0).collect();
        assert_eq!(versions, [2, 4, 6]);
        // The limit cuts the answer, and the scan says how far it looked.
        let answer = tail.read(Position::START, &only_a, 2).unwrap();
        assert_eq!(answer.events.len(), 2);
        assert_eq!(answer.scanned, event("a-1", 4).position);
    }

    #[test]
    fn a_read_behind_the_buffer_goes_to_the_database() {
        let tail = serving(3, event("a-1", 1).position);
        tail.push(0, (2..=7).map(|n| event("a-1", n)).collect());
        // Four events fell out: the buffer starts after version 4.
        let all = EventFilter::all();
        assert!(tail.read(event("a-1", 3).position, &all, 10).is_none());
        let answer = tail.read(event("a-1", 4).position, &all, 10).unwrap();
        let versions: Vec<u64> = answer.events.iter().map(|e| e.version.0).collect();
        assert_eq!(versions, [5, 6, 7]);
    }

    #[test]
    fn a_read_at_or_past_the_end_is_empty_and_scans_nothing_new() {
        let tail = serving(10, Position::START);
        tail.push(0, vec![event("a-1", 1)]);
        let past = event("a-1", 5).position;
        let answer = tail.read(past, &EventFilter::all(), 10).unwrap();
        assert!(answer.events.is_empty());
        assert_eq!(answer.scanned, past);
    }

    #[test]
    fn a_tail_that_does_not_serve_answers_nothing() {
        let tail = Tail::new(10);
        assert!(tail
            .read(Position::START, &EventFilter::all(), 10)
            .is_none());
        assert_eq!(tail.seen(), None);
        tail.start_at(0, Position::START);
        tail.push(0, vec![event("a-1", 1)]);
        assert_eq!(tail.seen(), Some(event("a-1", 1).position));
        tail.fail(0);
        assert!(tail
            .read(Position::START, &EventFilter::all(), 10)
            .is_none());
        assert_eq!(tail.seen(), None);
    }
}
