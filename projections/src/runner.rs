//! The runner: a checkpointed subscription that feeds a [`Subscriber`] in batches.
//!
//! It reads the checkpoint, subscribes to the store from there, hands over batches, and
//! lets the subscriber move its checkpoint atomically with its writes. A failing batch is
//! retried with backoff, narrowing to one event at a time so the poison event is found
//! exactly; after `max_attempts` the runner stops in [`State::Failed`] and reports the
//! event. An event the store cannot decode ([`StoreError::Corrupt`]) is treated the same
//! way: after `max_attempts` reads that fail on it the runner stops in
//! [`State::Failed`] naming its stream and version, so it can be repaired and the
//! runner restarted. Nothing is ever skipped. A fenced batch (another runner moved the checkpoint)
//! makes the runner re-read the checkpoint and resubscribe; so does, after a backoff, work a
//! pipelined subscriber lost ahead of its checkpoint ([`ApplyError::Rewind`]).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tessera_core::{EventReader, Position, RecordedEvent, StoreError};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use self::metered::RunnerMetrics;
use crate::{ApplyError, Failure, Lag, State, Status, Subscriber};

mod config;
mod handle;
mod metered;

pub use config::RunnerConfig;
pub use handle::{RestartError, RunnerHandle, WaitError};

/// Drives one subscriber from one store.
pub struct Runner<S, P> {
    store: S,
    subscriber: Arc<P>,
    config: RunnerConfig,
}

/// The shortest time between two measurements of the head that read-your-writes waits
/// ask for.
const ON_DEMAND_REFRESH: Duration = Duration::from_millis(10);

impl<S: EventReader, P: Subscriber> Runner<S, P> {
    /// A runner feeding `subscriber` from `store`.
    pub fn new(store: S, subscriber: P, config: RunnerConfig) -> Self {
        Self::shared(store, Arc::new(subscriber), config)
    }

    /// A runner over a subscriber shared with the caller (to query its read model).
    pub fn shared(store: S, subscriber: Arc<P>, config: RunnerConfig) -> Self {
        Self {
            store,
            subscriber,
            config,
        }
    }

    /// Starts the runner on the current tokio runtime.
    pub fn spawn(self) -> RunnerHandle<S> {
        let (status_tx, status_rx) = watch::channel(Status::new(self.subscriber.name()));
        let status_tx = Arc::new(status_tx);
        let (stop_tx, stop_rx) = watch::channel(false);
        let refresh = Arc::new(Notify::new());
        let restart = Arc::new(Notify::new());
        let task: JoinHandle<()> = tokio::spawn(self.run(
            Arc::clone(&status_tx),
            stop_rx,
            Arc::clone(&refresh),
            Arc::clone(&restart),
        ));
        let restart = handle::Restart {
            status: status_tx,
            signal: restart,
        };
        RunnerHandle::new(status_rx, stop_tx, refresh, restart, task)
    }

    async fn run(
        self,
        status: Arc<watch::Sender<Status>>,
        mut stop: watch::Receiver<bool>,
        refresh: Arc<Notify>,
        restart: Arc<Notify>,
    ) {
        let name = self.subscriber.name().to_owned();
        let span = tracing::info_span!("runner", subscriber = %name);
        let metrics = RunnerMetrics::new(&name);
        loop {
            let inner = self.run_inner(&status, &mut stop, &refresh, &metrics);
            let () = tracing::Instrument::instrument(inner, span.clone()).await;
            // It returns when asked to stop, or when it failed (read from the stop
            // request, not the status: a restart may already have changed that).
            if *stop.borrow() {
                break;
            }
            // Failed: wait, keeping the failure on show, for a restart or a stop.
            tokio::select! {
                _ = stop.changed() => break,
                () = restart.notified() => {}
            }
            // The handle already showed it starting again (see `RunnerHandle::restart`).
            tracing::info!(subscriber = %name, "restarting a failed subscriber");
        }
        status.send_modify(|s| {
            if s.state != State::Failed {
                s.state = State::Stopped;
            }
            s.updated_at = SystemTime::now();
        });
    }

    /// Runs until stopped or failed.
    async fn run_inner(
        &self,
        status: &watch::Sender<Status>,
        stop: &mut watch::Receiver<bool>,
        refresh: &Notify,
        metrics: &RunnerMetrics,
    ) {
        let mut failures = 0u32;
        // Reads in a row that failed on an undecodable stored event.
        let mut unreadable = 0u32;
        let mut last_head = Instant::now() - self.config.head_refresh;
        loop {
            let from = match self.subscriber.checkpoint().await {
                Ok(p) => p,
                Err(e) => {
                    failures += 1;
                    note_error(status, &format!("reading checkpoint: {e}"));
                    if !sleep_or_stop(self.config.backoff(failures), stop).await {
                        return;
                    }
                    continue;
                }
            };
            status.send_modify(|s| {
                s.checkpoint = from;
                if s.state == State::Starting {
                    s.state = State::CatchingUp;
                }
            });
            let mut subscription = self.store.subscribe(from, self.subscriber.filter());
            let mut cp = from;
            loop {
                let first = tokio::select! {
                    biased;
                    _ = stop.changed() => return,
                    item = subscription.next() => item,
                    () = refresh.notified() => {
                        // A read-your-writes wait asks: one measurement answers every
                        // waiter (they read the status, never the store), and asks are
                        // answered at most once per `ON_DEMAND_REFRESH`, so the store's
                        // load does not grow with the number of waiters.
                        let early = ON_DEMAND_REFRESH.saturating_sub(last_head.elapsed());
                        if !early.is_zero() && !sleep_or_stop(early, stop).await {
                            return;
                        }
                        last_head = Instant::now();
                        self.refresh_status(cp, status, metrics).await;
                        continue;
                    }
                    () = tokio::time::sleep(self.config.idle_refresh) => {
                        // Idle: the head may have moved with events this subscriber
                        // does not want; keep status and lag true.
                        self.refresh_status(cp, status, metrics).await;
                        continue;
                    }
                };
                let first = match first {
                    Some(Ok(e)) => e,
                    Some(Err(e)) => {
                        failures += 1;
                        note_error(status, &format!("subscription: {e}"));
                        if let StoreError::Corrupt {
                            stream, version, ..
                        } = &e
                        {
                            unreadable += 1;
                            if unreadable >= self.config.max_attempts {
                                fail_unreadable(status, stream, *version, &e, unreadable, cp);
                                return;
                            }
                        }
                        if !sleep_or_stop(self.config.backoff(failures), stop).await {
                            return;
                        }
                        break; // resubscribe from the checkpoint
                    }
                    None => break,
                };
                let mut batch = vec![first];
                let mut trailing_error = false;
                for item in subscription.try_next_batch(self.config.batch_size.max(1) - 1) {
                    match item {
                        Ok(e) => batch.push(e),
                        Err(_) => {
                            trailing_error = true;
                            break;
                        }
                    }
                }
                match self.apply(cp, &batch, status, stop).await {
                    Outcome::Applied(next) => {
                        failures = 0;
                        unreadable = 0;
                        cp = next;
                        publish_applied(status, cp, batch.len());
                        metrics.applied(batch.len());
                        if last_head.elapsed() >= self.config.head_refresh {
                            last_head = Instant::now();
                            self.refresh_status(cp, status, metrics).await;
                        }
                    }
                    Outcome::Fenced => break,
                    Outcome::Rewind => {
                        // An outage, not a poison event: back off, then resume from the
                        // stored checkpoint.
                        failures += 1;
                        let wait = self
                            .config
                            .backoff(failures.min(self.config.max_attempts.max(1)));
                        if !sleep_or_stop(wait, stop).await {
                            return;
                        }
                        break;
                    }
                    Outcome::Stop => return,
                }
                if trailing_error {
                    break;
                }
            }
        }
    }

    /// Applies a batch with the error policy. Narrows to one event after a failure.
    async fn apply(
        &self,
        mut cp: Position,
        batch: &[RecordedEvent],
        status: &watch::Sender<Status>,
        stop: &mut watch::Receiver<bool>,
    ) -> Outcome {
        let mut start = 0;
        let mut attempts = 0u32;
        let mut outage = 0u32;
        while start < batch.len() {
            let end = if attempts == 0 {
                batch.len()
            } else {
                start + 1
            };
            let slice = &batch[start..end];
            let name = self.subscriber.name();
            let traced = crate::traced::applying(name, slice);
            let applying = self.subscriber.apply(cp, slice);
            let lag = || status.borrow().lag_events;
            let applied = match crate::traced::batch(name, slice, lag) {
                Some(span) => tracing::Instrument::instrument(applying, span).await,
                None => applying.await,
            };
            drop(traced);
            match applied {
                Ok(()) => {
                    cp = slice[slice.len() - 1].position;
                    start = end;
                    attempts = 0;
                    outage = 0;
                }
                Err(ApplyError::Unavailable { error }) => {
                    outage = outage.saturating_add(1);
                    let text = error.to_string();
                    tracing::warn!(position = %batch[start].position, outage, error = %text, "subscriber unavailable; retrying");
                    note_error(status, &text);
                    // Capped at the backoff of `max_attempts`, never failing.
                    let wait = self
                        .config
                        .backoff(outage.min(self.config.max_attempts.max(1)));
                    if !sleep_or_stop(wait, stop).await {
                        return Outcome::Stop;
                    }
                }
                Err(ApplyError::Rewind { error }) => {
                    let text = error.to_string();
                    tracing::warn!(position = %batch[start].position, error = %text, "subscriber lost work ahead of its checkpoint; resuming from the checkpoint");
                    note_error(status, &text);
                    return Outcome::Rewind;
                }
                Err(ApplyError::Fenced { .. }) => {
                    tracing::info!("checkpoint moved by another runner; re-reading it");
                    return Outcome::Fenced;
                }
                Err(ApplyError::Failed { applied, error }) => {
                    if applied > 0 {
                        cp = slice[applied.min(slice.len()) - 1].position;
                        start += applied.min(slice.len());
                    }
                    attempts += 1;
                    let event = &batch[start.min(batch.len() - 1)];
                    let text = error.to_string();
                    tracing::warn!(position = %event.position, event_id = %event.id, attempts, error = %text, "subscriber failed");
                    note_error(status, &text);
                    if attempts >= self.config.max_attempts && end - start <= 1 {
                        fail(status, event, text, attempts, cp);
                        return Outcome::Stop;
                    }
                    if !sleep_or_stop(self.config.backoff(attempts), stop).await {
                        return Outcome::Stop;
                    }
                }
            }
        }
        Outcome::Applied(cp)
    }
}

impl<S: EventReader, P: Subscriber> Runner<S, P> {
    /// Measures the [`Lag`] at `cp` (head, then the oldest wanted event after it) and how
    /// far readers trail the writers. Caught up: the subscriber is live (every wanted
    /// event up to the head is applied; unwanted ones do not count as lag). Else it is
    /// behind by that event's age.
    async fn refresh_status(
        &self,
        cp: Position,
        status: &watch::Sender<Status>,
        metrics: &RunnerMetrics,
    ) {
        // One after another (the lag's two reads, then the reader lag), not at once: at
        // once they would take three pooled connections per runner (the latency bench
        // showed no gain from it).
        let Ok(lag) = Lag::measure(&self.store, cp, self.subscriber.filter()).await else {
            return;
        };
        let held_back = self.store.reader_lag().await;
        metrics.lag(&lag);
        status.send_modify(|s| {
            s.head = lag.head.or(s.head);
            if let Ok(held_back) = held_back {
                s.held_back = held_back;
            }
            s.lag_events = lag.events;
            s.lag = lag.age;
            if s.state != State::Rebuilding {
                s.state = if lag.caught_up() {
                    State::Live
                } else {
                    State::CatchingUp
                };
            }
            s.updated_at = SystemTime::now();
        });
    }
}

enum Outcome {
    Applied(Position),
    Fenced,
    /// Resume from the stored checkpoint after a backoff ([`ApplyError::Rewind`]).
    Rewind,
    Stop,
}

fn note_error(status: &watch::Sender<Status>, error: &str) {
    status.send_modify(|s| {
        s.last_error = Some(error.to_owned());
        s.updated_at = SystemTime::now();
    });
}

fn fail(
    status: &watch::Sender<Status>,
    event: &RecordedEvent,
    error: String,
    attempts: u32,
    cp: Position,
) {
    tracing::error!(position = %event.position, event_id = %event.id, event_type = %event.event_type, %error, "subscriber stopped on a failing event");
    status.send_modify(|s| {
        s.state = State::Failed;
        s.checkpoint = cp;
        s.failure = Some(Failure {
            position: event.position,
            event_id: Some(event.id),
            event_type: Some(event.event_type.clone()),
            stream_id: event.stream_id.to_string(),
            version: event.version.0,
            error,
            attempts,
        });
        s.updated_at = SystemTime::now();
    });
}

/// Stops the runner on a stored event the store cannot decode: nothing after `cp` can be
/// read, so nothing is skipped past it.
fn fail_unreadable(
    status: &watch::Sender<Status>,
    stream: &str,
    version: u64,
    error: &StoreError,
    attempts: u32,
    cp: Position,
) {
    tracing::error!(%stream, version, %error, after = %cp, "subscriber stopped on an event the store cannot decode");
    status.send_modify(|s| {
        s.state = State::Failed;
        s.checkpoint = cp;
        s.failure = Some(Failure {
            position: cp,
            event_id: None,
            event_type: None,
            stream_id: stream.to_owned(),
            version,
            error: error.to_string(),
            attempts,
        });
        s.updated_at = SystemTime::now();
    });
}

fn publish_applied(status: &watch::Sender<Status>, cp: Position, applied: usize) {
    status.send_modify(|s| {
        s.checkpoint = cp;
        s.applied += applied as u64;
        s.last_error = None;
        s.updated_at = SystemTime::now();
    });
}

/// Sleeps, or returns `false` at once when stopped.
async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stop.changed() => false,
        () = tokio::time::sleep(d) => !*stop.borrow(),
    }
}
