//! The inbox: a durable consumer that hands each integration message to a handler, in
//! version order per source stream, and acknowledges only after the handler's write.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tessera_core::{BoxError, Position};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Bus, Consumer, ConsumerSpec, Delivery, Message, MessageKind};
use crate::checkpoint::CheckpointStore;

/// What an inbox does with each message: write to the local store (with ids or
/// idempotency keys derived from the message, see [`Message::derived_event_id`]) or
/// hand it to a process manager. It must be idempotent: a message is delivered again
/// when a crash comes between the write and the acknowledgement.
pub trait InboxHandler: Send + Sync + 'static {
    /// Handles one message; an error has it delivered again after a backoff.
    fn handle(&self, message: &Message) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// How an inbox consumes and what it does with failures.
#[derive(Debug, Clone)]
pub struct InboxConfig {
    /// The durable consumer it reads.
    pub consumer: ConsumerSpec,
    /// Deliveries of one message the handler may fail before it is poison.
    pub max_attempts: u32,
    /// Delay before the first retry of a failed message (doubling, capped).
    pub min_backoff: Duration,
    /// Cap of the retry delay, and of the wait before reconnecting to the broker.
    pub max_backoff: Duration,
    /// Delay before a message held back for a missing predecessor is asked for again.
    pub hold_back: Duration,
    /// Park poison messages in the dead-letter destination and go on (`true`), or stop
    /// the inbox naming the message (`false`, the default).
    pub dead_letter: bool,
}

impl InboxConfig {
    /// Defaults for `consumer`: 5 attempts, 50 ms to 5 s backoff, 20 ms hold-back, stop
    /// on poison.
    pub fn new(consumer: ConsumerSpec) -> Self {
        Self {
            consumer,
            max_attempts: 5,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
            hold_back: Duration::from_millis(20),
            dead_letter: false,
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .min_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        doubled.min(self.max_backoff)
    }
}

/// Where an inbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    /// Opening its consumer.
    Starting,
    /// Consuming.
    Running,
    /// The broker is unreachable: backing off, then opening the consumer again.
    Reconnecting,
    /// Stopped on request.
    Stopped,
    /// Stopped on a poison message (see [`InboxStatus::poison`]).
    Failed,
}

/// The message an inbox stopped on, or parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poison {
    /// The source stream (empty for a command or an unreadable message).
    pub stream: String,
    /// The source version.
    pub version: u64,
    /// The integration name (empty for an unreadable message).
    pub name: String,
    /// The message id, when it could be read.
    pub id: Option<uuid::Uuid>,
    /// The last error.
    pub error: String,
}

/// An inbox's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxStatus {
    /// The consumer's name.
    pub name: String,
    /// Where it is.
    pub state: InboxState,
    /// Messages handled.
    pub handled: u64,
    /// Repeats acknowledged without effect.
    pub duplicates: u64,
    /// Deliveries held back because a predecessor had not been handled yet.
    pub held_back: u64,
    /// Messages parked in the dead-letter destination.
    pub dead_lettered: u64,
    /// Deliveries that were not integration messages.
    pub rejected: u64,
    /// Messages the broker holds for the consumer, not acknowledged yet (refreshed
    /// about every second; `None` if the broker cannot tell).
    pub lag: Option<u64>,
    /// The last error (handler, broker or message).
    pub last_error: Option<String>,
    /// The message it stopped on (state `Failed`), or the last one it parked.
    pub poison: Option<Poison>,
}

/// A durable consumer feeding an [`InboxHandler`]. See the [module](super) docs.
pub struct Inbox<H, C> {
    bus: Arc<dyn Bus>,
    handler: Arc<H>,
    positions: C,
    config: InboxConfig,
}

/// A running inbox.
pub struct InboxHandle {
    status: Arc<Mutex<InboxStatus>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl InboxHandle {
    /// Its figures now.
    pub fn status(&self) -> InboxStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops it after the message in hand; returns its last status.
    pub async fn stop(self) -> InboxStatus {
        let _ = self.stop.send(true);
        let status = Arc::clone(&self.status);
        let _ = self.task.await;
        let mut status = status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if status.state != InboxState::Failed {
            status.state = InboxState::Stopped;
        }
        status
    }

    /// Ends it at once, as a crash would: the message in hand is neither handled to
    /// the end nor acknowledged.
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// How often an inbox asks the broker for its lag.
const LAG_REFRESH: Duration = Duration::from_secs(1);

/// What to do after a delivery.
enum Next {
    Continue,
    Stop(Poison),
}

/// "Handled up to version v" as the position kept in the checkpoint store.
fn handled_to_position(version: u64) -> Position {
    Position::new(version.saturating_add(1), 0)
}

fn position_to_handled(p: Position) -> Option<u64> {
    p.commit.checked_sub(1)
}

impl<H: InboxHandler, C: CheckpointStore> Inbox<H, C> {
    /// An inbox reading `config.consumer` from `bus` into `handler`, keeping the version
    /// handled last per source stream in `positions` (named `{consumer}:{stream}`).
    pub fn new(bus: Arc<dyn Bus>, handler: H, positions: C, config: InboxConfig) -> Self {
        Self {
            bus,
            handler: Arc::new(handler),
            positions,
            config,
        }
    }

    /// Starts consuming.
    pub fn spawn(self) -> InboxHandle {
        let status = Arc::new(Mutex::new(InboxStatus {
            name: self.config.consumer.name.clone(),
            state: InboxState::Starting,
            handled: 0,
            duplicates: 0,
            held_back: 0,
            dead_lettered: 0,
            rejected: 0,
            lag: None,
            last_error: None,
            poison: None,
        }));
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(Arc::clone(&status), stopped));
        InboxHandle { status, stop, task }
    }

    async fn run(self, status: Arc<Mutex<InboxStatus>>, mut stopped: watch::Receiver<bool>) {
        let set = |f: &dyn Fn(&mut InboxStatus)| {
            f(&mut status.lock().unwrap_or_else(PoisonError::into_inner));
        };
        let mut failures = 0u32;
        while !*stopped.borrow() {
            let mut consumer: Box<dyn Consumer> = match self
                .bus
                .consume(&self.config.consumer)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    failures += 1;
                    let error = e.to_string();
                    set(&|s| {
                        s.state = InboxState::Reconnecting;
                        s.last_error = Some(error.clone());
                    });
                    tracing::warn!(inbox = %self.config.consumer.name, error = %e, "cannot open consumer");
                    let wait = self.config.backoff(failures);
                    let _ = tokio::time::timeout(wait, stopped.changed()).await;
                    continue;
                }
            };
            set(&|s| s.state = InboxState::Running);
            failures = 0;
            let mut measured = tokio::time::Instant::now() - LAG_REFRESH;
            while !*stopped.borrow() {
                if measured.elapsed() >= LAG_REFRESH {
                    measured = tokio::time::Instant::now();
                    if let Ok(lag) = consumer.lag().await {
                        set(&|s| s.lag = lag);
                    }
                }
                let delivery = tokio::select! {
                    d = consumer.next(Duration::from_millis(250)) => d,
                    _ = stopped.changed() => break,
                };
                match delivery {
                    Ok(None) => {}
                    Ok(Some(d)) => match self.deliver(d, &status).await {
                        Next::Continue => {}
                        Next::Stop(poison) => {
                            tracing::error!(inbox = %self.config.consumer.name, stream = %poison.stream, version = poison.version, error = %poison.error, "inbox stopped on a poison message");
                            set(&|s| {
                                s.state = InboxState::Failed;
                                s.last_error = Some(poison.error.clone());
                                s.poison = Some(poison.clone());
                            });
                            return;
                        }
                    },
                    Err(e) => {
                        let error = e.to_string();
                        set(&|s| {
                            s.state = InboxState::Reconnecting;
                            s.last_error = Some(error.clone());
                        });
                        break;
                    }
                }
            }
        }
    }

    /// Handles one delivery: poison, repeat, held back, or handled and acknowledged.
    async fn deliver(&self, d: Delivery, status: &Mutex<InboxStatus>) -> Next {
        let bump = |f: &dyn Fn(&mut InboxStatus)| {
            f(&mut status.lock().unwrap_or_else(PoisonError::into_inner))
        };
        let message = match &d.message {
            Ok(m) => m.clone(),
            Err(e) => {
                bump(&|s| s.rejected += 1);
                let poison = Poison {
                    stream: String::new(),
                    version: 0,
                    name: String::new(),
                    id: None,
                    error: format!("not an integration message: {e}"),
                };
                return self.poisoned(d, poison, status).await;
            }
        };
        let key = format!("{}:{}", self.config.consumer.name, message.stream);
        let ordered = message.kind == MessageKind::Event;
        let mut stored = Position::START;
        if ordered {
            stored = match self.positions.load(&key).await {
                Ok(p) => p,
                Err(e) => return self.retry_later(d, &e.to_string(), status).await,
            };
            let handled = position_to_handled(stored);
            if handled >= Some(message.version) {
                bump(&|s| s.duplicates += 1);
                let _ = d.ack().await;
                return Next::Continue;
            }
            if handled < message.previous {
                bump(&|s| s.held_back += 1);
                // Longer each time it comes back early, so a predecessor that takes a
                // broker's redelivery timeout to return does not use up the message's
                // deliveries.
                let wait = self
                    .config
                    .hold_back
                    .saturating_mul(d.attempt.max(1))
                    .min(self.config.max_backoff);
                let _ = d.retry(wait).await;
                return Next::Continue;
            }
        }
        if let Err(e) = self.handler.handle(&message).await {
            let error = e.to_string();
            if d.attempt >= self.config.max_attempts {
                let poison = Poison {
                    stream: message.stream.clone(),
                    version: message.version,
                    name: message.name.clone(),
                    id: Some(message.id),
                    error,
                };
                let next = self.poisoned(d, poison, status).await;
                if ordered && matches!(next, Next::Continue) {
                    // Parked, not handled: the stream goes on after it (the dead-letter
                    // destination has it), instead of holding back every later event.
                    let to = handled_to_position(message.version);
                    if let Err(e) = self.positions.advance(&key, stored, to).await {
                        tracing::warn!(inbox = %self.config.consumer.name, error = %e, "cannot record a parked message");
                    }
                }
                return next;
            }
            return self.retry_later(d, &error, status).await;
        }
        if ordered {
            let to = handled_to_position(message.version);
            // `false`: another instance of this inbox handled it meanwhile; the handler
            // is idempotent, so the effect is there once either way.
            if let Err(e) = self.positions.advance(&key, stored, to).await {
                return self.retry_later(d, &e.to_string(), status).await;
            }
        }
        let _ = d.ack().await;
        bump(&|s| s.handled += 1);
        Next::Continue
    }

    async fn retry_later(&self, d: Delivery, error: &str, status: &Mutex<InboxStatus>) -> Next {
        tracing::warn!(inbox = %self.config.consumer.name, attempt = d.attempt, error, "message failed; retrying");
        status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_error = Some(error.to_owned());
        let delay = self.config.backoff(d.attempt);
        let _ = d.retry(delay).await;
        Next::Continue
    }

    async fn poisoned(&self, d: Delivery, poison: Poison, status: &Mutex<InboxStatus>) -> Next {
        if !self.config.dead_letter {
            // Left unacknowledged: after a restart the broker delivers it again.
            drop(d);
            return Next::Stop(poison);
        }
        let reason = poison.error.clone();
        match d.dead_letter(&reason).await {
            Ok(()) => {
                let mut s = status.lock().unwrap_or_else(PoisonError::into_inner);
                s.dead_lettered += 1;
                s.last_error = Some(reason);
                s.poison = Some(poison);
                Next::Continue
            }
            Err(e) => Next::Stop(Poison {
                error: format!("{reason}; parking it failed: {e}"),
                ..poison
            }),
        }
    }
}
